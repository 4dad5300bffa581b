//! Institution certificates: the RSA public keys period keys are wrapped
//! under.

use std::path::{Path, PathBuf};

use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{Oaep, RsaPublicKey};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::der::{DecodePem, Encode};
use x509_cert::spki::ObjectIdentifier;

use super::KeyError;

/// `rsaEncryption` (RFC 8017): the only key type accepted, as the
/// institution's parquet readers unwrap with RSA-OAEP.
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// An institution's registered certificate, checked and ready to wrap keys.
#[derive(Debug, Clone)]
pub struct InstitutionCertificate {
    /// Where it was read from.
    pub path: PathBuf,
    /// SHA-256 of the certificate's DER, lowercase hex.
    pub fingerprint: String,
    /// Modulus size in bits.
    pub bits: usize,
    /// End of validity.
    pub not_after: jiff::Timestamp,
    public: RsaPublicKey,
}

impl InstitutionCertificate {
    /// Reads and checks the PEM certificate at `path`, valid at `now`.
    pub fn load(path: &Path, now: jiff::Timestamp) -> Result<Self, KeyError> {
        let pem = std::fs::read(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_pem(path, &pem, now)
    }

    /// Checks a PEM certificate: X.509, an RSA key of at least 2048 bits,
    /// valid at `now`. `path` names it in errors.
    pub fn from_pem(path: &Path, pem: &[u8], now: jiff::Timestamp) -> Result<Self, KeyError> {
        let bad = |reason: String| KeyError::Certificate {
            path: path.to_owned(),
            reason,
        };
        let cert = Certificate::from_pem(pem)
            .map_err(|e| bad(format!("not a PEM X.509 certificate: {e}")))?;
        let tbs = &cert.tbs_certificate;
        let time = |t: x509_cert::time::Time| {
            let secs = i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX);
            jiff::Timestamp::from_second(secs).unwrap_or(jiff::Timestamp::MAX)
        };
        let (not_before, not_after) = (time(tbs.validity.not_before), time(tbs.validity.not_after));
        if now >= not_after {
            return Err(bad(format!(
                "the certificate expired at {not_after}: register the institution's new certificate"
            )));
        }
        if now < not_before {
            return Err(bad(format!(
                "the certificate is not valid before {not_before}"
            )));
        }
        let spki = &tbs.subject_public_key_info;
        if spki.algorithm.oid != RSA_ENCRYPTION {
            return Err(bad(format!(
                "the certificate's key is not RSA (algorithm {}): institution keys are unwrapped with RSA-OAEP",
                spki.algorithm.oid
            )));
        }
        let key_der = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| bad("the RSA public key is not a whole number of bytes".into()))?;
        let public = RsaPublicKey::from_pkcs1_der(key_der)
            .map_err(|e| bad(format!("unreadable RSA public key: {e}")))?;
        let bits = public.n().bits();
        if bits < MIN_RSA_BITS {
            return Err(bad(format!(
                "the RSA key has {bits} bits; at least {MIN_RSA_BITS} are required"
            )));
        }
        let der = cert
            .to_der()
            .map_err(|e| bad(format!("cannot encode the certificate: {e}")))?;
        let fingerprint = Sha256::digest(&der)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Self {
            path: path.to_owned(),
            fingerprint,
            bits,
            not_after,
            public,
        })
    }

    /// Wraps `key` with RSA-OAEP, SHA-256 for the hash and MGF1, no label
    /// (what the shipped pyarrow `KmsClient` unwraps).
    pub fn wrap(&self, key: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.public
            .encrypt(
                &mut rsa::rand_core::OsRng,
                Oaep::new::<rsa::sha2::Sha256>(),
                key,
            )
            .map_err(|e| {
                KeyError::Crypto(format!("RSA-OAEP wrap under {}: {e}", self.path.display()))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/keys")
            .join(name)
    }

    fn now() -> jiff::Timestamp {
        jiff::Timestamp::now()
    }

    #[test]
    fn an_rsa_2048_certificate_is_accepted_and_wraps_keys() {
        let cert = InstitutionCertificate::load(&fixture("alpha.pem"), now()).unwrap();
        assert_eq!(cert.bits, 2048);
        assert_eq!(cert.fingerprint.len(), 64);
        let wrapped = cert.wrap(&[7; 16]).unwrap();
        assert_eq!(wrapped.len(), 256);
        // OAEP is randomised: the same key wraps differently each time.
        assert_ne!(wrapped, cert.wrap(&[7; 16]).unwrap());
    }

    #[test]
    fn unusable_certificates_are_refused_with_the_reason() {
        let err = |name: &str, now: jiff::Timestamp| {
            InstitutionCertificate::load(&fixture(name), now)
                .unwrap_err()
                .to_string()
        };
        let small = err("rsa1024.pem", now());
        assert!(
            small.contains("rsa1024.pem") && small.contains("1024 bits"),
            "{small}"
        );
        let ec = err("ec-p256.pem", now());
        assert!(ec.contains("not RSA"), "{ec}");
        let later = "2127-01-01T00:00:00Z".parse().unwrap();
        let expired = err("alpha.pem", later);
        assert!(expired.contains("expired at 2126-"), "{expired}");
        let earlier = "2020-01-01T00:00:00Z".parse().unwrap();
        assert!(err("alpha.pem", earlier).contains("not valid before"));
        let missing = err("absent.pem", now());
        assert!(missing.contains("cannot read"), "{missing}");
        let garbage = InstitutionCertificate::from_pem(Path::new("x.pem"), b"nope", now())
            .unwrap_err()
            .to_string();
        assert!(
            garbage.starts_with("x.pem: not a PEM X.509 certificate"),
            "{garbage}"
        );
    }
}
