//! PKMT1 key material: how a Parquet file names and wraps its data keys,
//! in the format pyarrow, parquet-java and Spark read (Parquet key
//! management tools, double wrapping, material stored in the file).
//!
//! A data key (DEK) is wrapped under the period key (KEK) with AES-GCM
//! ([`Kek::wrap`]); the KEK travels wrapped under the institution's
//! certificate (`wrappedKEK`), which the institution's `KmsClient` unwraps
//! with its private key. `kmsInstanceID` carries the institution id, so a
//! reader's client factory can pick the right private key.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{Kek, KeyError, PeriodKey};

/// `kmsInstanceURL` of kansoku's files: there is no KMS server; the
/// "KMS" is the institution's private key.
pub const KMS_INSTANCE_URL: &str = "kansoku";

/// The key material of one data key. Field names and JSON types are the
/// format's (the C++ reader rejects booleans written as strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyMaterial {
    /// Always `PKMT1`.
    #[serde(rename = "keyMaterialType")]
    pub key_material_type: String,
    /// The material is in the file's key metadata.
    #[serde(rename = "internalStorage")]
    pub internal_storage: bool,
    /// The footer's key, rather than a column's.
    #[serde(rename = "isFooterKey")]
    pub is_footer_key: bool,
    /// The institution id (footer key only).
    #[serde(
        rename = "kmsInstanceID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kms_instance_id: Option<String>,
    /// [`KMS_INSTANCE_URL`] (footer key only).
    #[serde(
        rename = "kmsInstanceURL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kms_instance_url: Option<String>,
    /// The institution and its certificate's fingerprint.
    #[serde(rename = "masterKeyID")]
    pub master_key_id: String,
    /// The data key wrapped under the KEK, base64.
    #[serde(rename = "wrappedDEK")]
    pub wrapped_dek: String,
    /// Always true: DEKs are wrapped under a KEK, not by the KMS.
    #[serde(rename = "doubleWrapping")]
    pub double_wrapping: bool,
    /// The KEK's id, base64.
    #[serde(rename = "keyEncryptionKeyID")]
    pub kek_id: String,
    /// The KEK wrapped under the institution's certificate, base64.
    #[serde(rename = "wrappedKEK")]
    pub wrapped_kek: String,
}

impl KeyMaterial {
    /// Material for the footer key `dek` of a file of `institution`.
    pub fn footer(key: &PeriodKey, institution: &str, dek: &[u8]) -> Result<Self, KeyError> {
        let mut material = Self::column(key, dek)?;
        material.is_footer_key = true;
        material.kms_instance_id = Some(institution.to_owned());
        material.kms_instance_url = Some(KMS_INSTANCE_URL.to_owned());
        Ok(material)
    }

    /// Material for a column key `dek`.
    pub fn column(key: &PeriodKey, dek: &[u8]) -> Result<Self, KeyError> {
        Ok(Self {
            key_material_type: "PKMT1".into(),
            internal_storage: true,
            is_footer_key: false,
            kms_instance_id: None,
            kms_instance_url: None,
            master_key_id: key.master_key_id.clone(),
            wrapped_dek: key.kek.wrap(dek)?,
            double_wrapping: true,
            kek_id: key.kek.id(),
            wrapped_kek: key.wrapped_kek.clone(),
        })
    }

    /// The JSON stored as the key's metadata.
    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings and booleans always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads key metadata written by [`KeyMaterial::to_json`] (or by any
    /// PKMT1 writer using double wrapping and internal storage).
    pub fn parse(metadata: &[u8]) -> Result<Self, KeyError> {
        let material: Self = serde_json::from_slice(metadata).map_err(|e| {
            KeyError::Crypto(format!("key metadata is not PKMT1 key material: {e}"))
        })?;
        if material.key_material_type != "PKMT1" {
            return Err(KeyError::Crypto(format!(
                "key material type {:?}, expected PKMT1",
                material.key_material_type
            )));
        }
        if !material.internal_storage || !material.double_wrapping {
            return Err(KeyError::Crypto(
                "key material with external storage or single wrapping is not kansoku's".into(),
            ));
        }
        Ok(material)
    }

    /// The data key, unwrapped with `kek`, which must be the KEK it names.
    pub fn unwrap_dek(&self, kek: &Kek) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        if kek.id() != self.kek_id {
            return Err(KeyError::Crypto(format!(
                "the data key is wrapped under KEK {}, not {}",
                self.kek_id,
                kek.id()
            )));
        }
        kek.unwrap(&self.wrapped_dek)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::keys::PeriodLength;

    fn period_key() -> PeriodKey {
        PeriodKey {
            period: PeriodLength::WEEK.period_of(jiff::civil::date(2026, 12, 4)),
            kek: Kek::generate(),
            wrapped_kek: "d3JhcHBlZA==".into(),
            master_key_id: "alpha/00ff".into(),
        }
    }

    #[test]
    fn footer_and_column_material_follow_pkmt1() {
        let key = period_key();
        let footer = KeyMaterial::footer(&key, "alpha", &[1; 32]).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&footer.to_json()).unwrap();
        assert_eq!(json["keyMaterialType"], "PKMT1");
        assert_eq!(json["internalStorage"], true);
        assert_eq!(json["isFooterKey"], true);
        assert_eq!(json["doubleWrapping"], true);
        assert_eq!(json["kmsInstanceID"], "alpha");
        assert_eq!(json["kmsInstanceURL"], KMS_INSTANCE_URL);
        assert_eq!(json["masterKeyID"], "alpha/00ff");
        assert_eq!(json["keyEncryptionKeyID"], key.kek.id());
        assert_eq!(json["wrappedKEK"], "d3JhcHBlZA==");

        let column = KeyMaterial::column(&key, &[2; 32]).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&column.to_json()).unwrap();
        assert_eq!(json["isFooterKey"], false);
        assert!(json.get("kmsInstanceID").is_none());
        assert!(json.get("kmsInstanceURL").is_none());

        let parsed = KeyMaterial::parse(&column.to_json()).unwrap();
        assert_eq!(parsed, column);
        assert_eq!(parsed.unwrap_dek(&key.kek).unwrap().as_slice(), &[2; 32]);
        let other = Kek::generate();
        assert!(
            parsed
                .unwrap_dek(&other)
                .unwrap_err()
                .to_string()
                .contains("not")
        );
    }

    #[test]
    fn foreign_or_broken_material_is_refused() {
        assert!(KeyMaterial::parse(b"{}").is_err());
        assert!(KeyMaterial::parse(b"\xff").is_err());
        let key = period_key();
        let mut material = KeyMaterial::column(&key, &[3; 16]).unwrap();
        material.double_wrapping = false;
        assert!(KeyMaterial::parse(&material.to_json()).is_err());
        material.double_wrapping = true;
        material.key_material_type = "PKMT2".into();
        assert!(KeyMaterial::parse(&material.to_json()).is_err());
    }
}
