//! The runtime's own WebCrypto (native code in workerd): PBKDF2-HMAC-SHA256 by
//! `crypto.subtle.deriveBits` (the `shop_domain::customers::accounts::Kdf` port) and random bytes by
//! `crypto.getRandomValues` (salts, opaque tokens). Nothing here derives a key itself.

use js_sys::{Array, Object, Reflect, Uint8Array};
use shop_domain::customers::accounts::{Kdf, HASH_BYTES};
use shop_domain::StoreError;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, SubtleCrypto};

pub struct WebCryptoKdf;

fn failed(step: &str) -> impl Fn(JsValue) -> StoreError + '_ {
    move |e| StoreError::new(format!("WebCrypto {step}: {e:?}"))
}

/// `crypto` of the global scope.
fn crypto() -> Result<JsValue, StoreError> {
    let crypto =
        Reflect::get(&js_sys::global(), &JsValue::from_str("crypto")).map_err(failed("crypto"))?;
    if crypto.is_undefined() {
        return Err(StoreError::new("WebCrypto is not available"));
    }
    Ok(crypto)
}

/// `N` bytes from the runtime's cryptographically secure generator.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], StoreError> {
    let crypto: web_sys::Crypto = crypto()?.unchecked_into();
    let mut bytes = [0u8; N];
    crypto
        .get_random_values_with_u8_array(&mut bytes)
        .map_err(failed("getRandomValues"))?;
    Ok(bytes)
}

/// `crypto.subtle` of the global scope.
fn subtle() -> Result<SubtleCrypto, StoreError> {
    let crypto = crypto()?;
    let subtle =
        Reflect::get(&crypto, &JsValue::from_str("subtle")).map_err(failed("crypto.subtle"))?;
    if subtle.is_undefined() {
        return Err(StoreError::new("WebCrypto is not available"));
    }
    Ok(subtle.unchecked_into())
}

impl Kdf for WebCryptoKdf {
    async fn pbkdf2_sha256(
        &self,
        password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Result<[u8; HASH_BYTES], StoreError> {
        let subtle = subtle()?;
        let usages = Array::of1(&JsValue::from_str("deriveBits"));
        let imported = subtle
            .import_key_with_str("raw", &Uint8Array::from(password), "PBKDF2", false, &usages)
            .map_err(failed("importKey"))?;
        let key: CryptoKey = JsFuture::from(imported)
            .await
            .map_err(failed("importKey"))?
            .unchecked_into();
        let params = Object::new();
        for (name, value) in [
            ("name", JsValue::from_str("PBKDF2")),
            ("hash", JsValue::from_str("SHA-256")),
            ("salt", Uint8Array::from(salt).into()),
            ("iterations", JsValue::from(iterations)),
        ] {
            Reflect::set(&params, &JsValue::from_str(name), &value).map_err(failed("params"))?;
        }
        let bits = subtle
            .derive_bits_with_object(&params, &key, 8 * HASH_BYTES as u32)
            .map_err(failed("deriveBits"))?;
        let bits = JsFuture::from(bits).await.map_err(failed("deriveBits"))?;
        Uint8Array::new(&bits)
            .to_vec()
            .try_into()
            .map_err(|_| StoreError::new("WebCrypto deriveBits: not 32 bytes"))
    }
}
