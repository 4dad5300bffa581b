//! The keys of the current periods, in memory only.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::civil::Date;

use super::{InstitutionCertificate, Kek, KeyError, KeyRecord, KeyRegistry, Period, PeriodLength};

/// The key of an institution's current period, with what PKMT1 key
/// material names.
#[derive(Debug)]
pub struct PeriodKey {
    /// The period.
    pub period: Period,
    /// The KEK; zeroed when this key is replaced or dropped.
    pub kek: Kek,
    /// The KEK wrapped under the institution's certificate, base64.
    pub wrapped_kek: String,
    /// PKMT1 `masterKeyID`: the institution and its certificate.
    pub master_key_id: String,
}

/// Current period keys by institution. A key is made on first use in its
/// period, recorded wrapped, and dropped (zeroed) when the institution's
/// next period starts: from then on only the institution can unwrap it.
#[derive(Debug)]
pub struct KeyRing {
    registry: KeyRegistry,
    length: PeriodLength,
    certificates: HashMap<String, InstitutionCertificate>,
    current: HashMap<String, PeriodKey>,
}

impl KeyRing {
    /// A ring over `registry` for institutions with these certificates.
    pub fn new(
        registry: KeyRegistry,
        length: PeriodLength,
        certificates: HashMap<String, InstitutionCertificate>,
    ) -> Self {
        Self {
            registry,
            length,
            certificates,
            current: HashMap::new(),
        }
    }

    /// The registry.
    pub fn registry(&self) -> &KeyRegistry {
        &self.registry
    }

    /// The key for an institution's data of `day`, made (and the previous
    /// period's dropped) when `day` starts a new period. Late data of a
    /// period already rolled over gets the current key: the old one is
    /// gone, and making another for a past period would flap at every late
    /// record. `now` checks the certificate is still valid when a key is
    /// made.
    pub fn key_for(
        &mut self,
        institution: &str,
        day: Date,
        now: jiff::Timestamp,
    ) -> Result<&PeriodKey, KeyError> {
        let period = self.length.period_of(day);
        let fresh = self
            .current
            .get(institution)
            .is_none_or(|k| k.period.start < period.start);
        if fresh {
            // Drop the old key before making the new one: its plaintext
            // must not outlive its period, whatever happens next.
            self.current.remove(institution);
            let key = self.make(institution, period, now)?;
            self.current.insert(institution.to_owned(), key);
        }
        self.current
            .get(institution)
            .ok_or_else(|| KeyError::NoCertificate(institution.to_owned()))
    }

    /// Drops every key of a period before `day` (at a rollover with no
    /// data for an institution, its old key must go all the same).
    pub fn drop_before(&mut self, day: Date) {
        let length = self.length;
        self.current
            .retain(|_, k| k.period.start >= length.period_of(day).start);
    }

    /// Whether the ring holds a plaintext key for this KEK id.
    pub fn holds(&self, kek_id: &str) -> bool {
        self.current.values().any(|k| k.kek.id() == kek_id)
    }

    fn make(
        &self,
        institution: &str,
        period: Period,
        now: jiff::Timestamp,
    ) -> Result<PeriodKey, KeyError> {
        let certificate = self
            .certificates
            .get(institution)
            .ok_or_else(|| KeyError::NoCertificate(institution.to_owned()))?;
        if now >= certificate.not_after {
            return Err(KeyError::Certificate {
                path: certificate.path.clone(),
                reason: format!(
                    "the certificate of {institution} expired at {}: register its new certificate",
                    certificate.not_after
                ),
            });
        }
        let kek = Kek::generate();
        let wrapped_kek = STANDARD.encode(certificate.wrap(kek.bytes())?);
        let version = self.registry.last_version(institution, &period)? + 1;
        self.registry.insert(&KeyRecord {
            institution: institution.to_owned(),
            period: period.to_string(),
            period_start: period.start.to_string(),
            period_days: period.days,
            version,
            kek_id: kek.id(),
            certificate_fingerprint: certificate.fingerprint.clone(),
            wrapped_kek: wrapped_kek.clone(),
            created: now.to_string(),
        })?;
        tracing::info!(
            institution,
            period = %period,
            version,
            kek_id = %kek.id(),
            "new period key"
        );
        Ok(PeriodKey {
            period,
            kek,
            wrapped_kek,
            master_key_id: format!("{institution}/{}", certificate.fingerprint),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use jiff::civil::date;
    use rsa::pkcs8::DecodePrivateKey;

    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/keys")
            .join(name)
    }

    fn ring(dir: &Path) -> KeyRing {
        let now = jiff::Timestamp::now();
        let certificates = ["alpha", "beta"]
            .into_iter()
            .map(|id| {
                let cert = InstitutionCertificate::load(&fixture(&format!("{id}.pem")), now);
                (id.to_owned(), cert.unwrap())
            })
            .collect();
        let registry = KeyRegistry::open(&dir.join("keys.sqlite")).unwrap();
        KeyRing::new(registry, PeriodLength::WEEK, certificates)
    }

    /// What the institution does with its private key.
    fn unwrap_as(institution: &str, wrapped_kek: &str) -> Result<Vec<u8>, rsa::Error> {
        let pem = std::fs::read_to_string(fixture(&format!("{institution}.key"))).unwrap();
        let private = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).unwrap();
        private.decrypt(
            rsa::Oaep::new::<rsa::sha2::Sha256>(),
            &STANDARD.decode(wrapped_kek).unwrap(),
        )
    }

    #[test]
    fn a_rollover_leaves_the_old_period_to_the_institution_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut ring = ring(dir.path());
        let now = jiff::Timestamp::now();
        let week49 = ring.key_for("alpha", date(2026, 12, 4), now).unwrap();
        assert_eq!(week49.period.to_string(), "2026-W49");
        let old_id = week49.kek.id();
        let dek_wrapped = week49.kek.wrap(&[5; 32]).unwrap();
        let old_bytes = *week49.kek.bytes();
        // The same week: the same key.
        assert_eq!(
            ring.key_for("alpha", date(2026, 12, 6), now)
                .unwrap()
                .kek
                .id(),
            old_id
        );

        // The next week: a new key; the old one is gone from the process.
        let week50 = ring.key_for("alpha", date(2026, 12, 7), now).unwrap();
        assert_ne!(week50.kek.id(), old_id);
        assert!(!ring.holds(&old_id));
        // Late data of the finished week: the current key, not a remade
        // old one.
        let week50_id = ring
            .key_for("alpha", date(2026, 12, 7), now)
            .unwrap()
            .kek
            .id();
        let late = ring.key_for("alpha", date(2026, 12, 5), now).unwrap();
        assert_eq!(late.kek.id(), week50_id);
        assert!(!ring.holds(&old_id));
        // The registry holds it wrapped only; the institution unwraps it.
        let record = ring.registry().by_id(&old_id).unwrap().unwrap();
        assert_eq!(record.period, "2026-W49");
        assert!(!record.wrapped_kek.contains(&STANDARD.encode(old_bytes)));
        let unwrapped = unwrap_as("alpha", &record.wrapped_kek).unwrap();
        assert_eq!(unwrapped, old_bytes);
        let mut id = [0; 16];
        id.copy_from_slice(&STANDARD.decode(&old_id).unwrap());
        let kek = Kek::from_parts(id, zeroize::Zeroizing::new(old_bytes));
        assert_eq!(kek.unwrap(&dek_wrapped).unwrap().as_slice(), &[5; 32]);
        // Another institution's private key cannot.
        assert!(unwrap_as("beta", &record.wrapped_kek).is_err());
    }

    #[test]
    fn a_restart_mid_period_records_a_new_version() {
        let dir = tempfile::tempdir().unwrap();
        let now = jiff::Timestamp::now();
        let first = ring(dir.path())
            .key_for("beta", date(2026, 12, 1), now)
            .unwrap()
            .kek
            .id();
        let mut restarted = ring(dir.path());
        let second = restarted
            .key_for("beta", date(2026, 12, 2), now)
            .unwrap()
            .kek
            .id();
        assert_ne!(first, second);
        let records = restarted.registry().list(Some("beta")).unwrap();
        let versions: Vec<u32> = records.iter().map(|r| r.version).collect();
        assert_eq!(versions, [1, 2]);
        assert!(
            records
                .iter()
                .all(|r| r.certificate_fingerprint.len() == 64)
        );
    }

    #[test]
    fn an_institution_without_a_certificate_gets_no_key() {
        let dir = tempfile::tempdir().unwrap();
        let err = ring(dir.path())
            .key_for("gamma", date(2026, 12, 1), jiff::Timestamp::now())
            .unwrap_err();
        assert!(
            err.to_string().contains("gamma has no certificate"),
            "{err}"
        );
    }
}
