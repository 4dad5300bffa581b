//! Key encryption keys: the period key that wraps the data keys of files.

use std::fmt;

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes128Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use super::KeyError;

/// Bytes of a KEK and of its id (what parquet-cpp and parquet-java make).
pub const KEK_BYTES: usize = 16;
const NONCE_BYTES: usize = 12;

/// A period key. The key bytes are zeroed when it is dropped; `Debug`
/// shows the id only.
pub struct Kek {
    id: [u8; KEK_BYTES],
    key: Zeroizing<[u8; KEK_BYTES]>,
}

impl Kek {
    /// A fresh random key with a fresh random id.
    pub fn generate() -> Self {
        let mut id = [0; KEK_BYTES];
        OsRng.fill_bytes(&mut id);
        let mut key = Zeroizing::new([0; KEK_BYTES]);
        OsRng.fill_bytes(key.as_mut());
        Self { id, key }
    }

    /// A key unwrapped by its institution (`kansoku decrypt approve`).
    pub fn from_parts(id: [u8; KEK_BYTES], key: Zeroizing<[u8; KEK_BYTES]>) -> Self {
        Self { id, key }
    }

    /// The id, base64 (PKMT1 `keyEncryptionKeyID`).
    pub fn id(&self) -> String {
        STANDARD.encode(self.id)
    }

    /// The key bytes, to wrap under the institution's certificate.
    pub fn bytes(&self) -> &[u8; KEK_BYTES] {
        &self.key
    }

    /// Wraps a data key as PKMT1 does: base64 of nonce ‖ AES-GCM
    /// ciphertext ‖ tag, the KEK id as associated data.
    pub fn wrap(&self, dek: &[u8]) -> Result<String, KeyError> {
        let cipher = Aes128Gcm::new_from_slice(self.key.as_ref())
            .map_err(|e| KeyError::Crypto(format!("KEK {}: {e}", self.id())))?;
        let nonce = Aes128Gcm::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: dek,
                    aad: &self.id,
                },
            )
            .map_err(|e| {
                KeyError::Crypto(format!("wrapping a data key under KEK {}: {e}", self.id()))
            })?;
        let mut out = Vec::with_capacity(NONCE_BYTES + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(STANDARD.encode(out))
    }

    /// Unwraps a data key wrapped by [`Kek::wrap`].
    pub fn unwrap(&self, wrapped: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let fail =
            |what: &str| KeyError::Crypto(format!("data key under KEK {}: {what}", self.id()));
        let bytes = STANDARD.decode(wrapped).map_err(|_| fail("not base64"))?;
        if bytes.len() < NONCE_BYTES + 16 {
            return Err(fail("too short"));
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let cipher = Aes128Gcm::new_from_slice(self.key.as_ref()).map_err(|_| fail("bad key"))?;
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &self.id,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| fail("authentication failed (wrong key or altered)"))
    }
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kek")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_keys_round_trip_and_other_keys_fail() {
        let kek = Kek::generate();
        let dek = [9u8; 32];
        let wrapped = kek.wrap(&dek).unwrap();
        // nonce 12 + key 32 + tag 16 = 60 bytes, 80 base64 characters.
        assert_eq!(wrapped.len(), 80);
        assert_eq!(kek.unwrap(&wrapped).unwrap().as_slice(), &dek);
        assert!(Kek::generate().unwrap(&wrapped).is_err());
        // The id is bound in: the same key under another id fails.
        let renamed = Kek::from_parts([0; KEK_BYTES], Zeroizing::new(*kek.bytes()));
        assert!(renamed.unwrap(&wrapped).is_err());
        assert!(!format!("{kek:?}").contains(&format!("{:?}", kek.bytes())));
    }
}
