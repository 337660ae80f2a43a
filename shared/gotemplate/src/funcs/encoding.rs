//! Sprig's encodings, hashes and random values (`b64enc b64dec b32enc
//! b32dec sha1sum sha256sum adler32sum uuidv4 randAlphaNum randAlpha
//! randAscii randNumeric shuffle`), and the Sprig functions crtask refuses
//! (`env expandenv getHostByName` and the key and certificate generators):
//! they are defined, so a template that names them parses as in ACR, and
//! fail with a clear message when called.

use base64::Engine as _;
use serde_json::Value;
use sha1::Digest as _;

use super::args::{int_arg, strs, take, too_large, FnResult, Res};
use crate::value::display;

pub(crate) const NAMES: &[&str] = &[
    "b64enc",
    "b64dec",
    "b32enc",
    "b32dec",
    "sha1sum",
    "sha256sum",
    "adler32sum",
    "uuidv4",
    "randAlphaNum",
    "randAlpha",
    "randAscii",
    "randNumeric",
    "shuffle",
    // refused
    "env",
    "expandenv",
    "getHostByName",
    "genPrivateKey",
    "derivePassword",
    "buildCustomCert",
    "genCA",
    "genSelfSignedCert",
    "genSignedCert",
    "encryptAES",
    "decryptAES",
];

/// Why each refused function is refused.
fn refusal(name: &str) -> Option<&'static str> {
    Some(match name {
        "env" | "expandenv" => {
            "the build host's environment is not exposed to task files; pass values with --set or --values"
        }
        "getHostByName" => "templates do not resolve host names; resolve them in a cmd step",
        "genPrivateKey" | "derivePassword" | "buildCustomCert" | "genCA"
        | "genSelfSignedCert" | "genSignedCert" | "encryptAES" | "decryptAES" => {
            "key, certificate and encryption functions are not supported; create keys in a cmd step or pass them as secrets"
        }
        _ => return None,
    })
}

pub(crate) fn call(name: &str, vals: Vec<Value>) -> FnResult {
    if let Some(why) = refusal(name) {
        return Err(format!("{name} is not available in crtask: {why}"));
    }
    let s = |v: String| Ok(Value::String(v));
    match name {
        "b64enc" => {
            let [x] = strs(&vals)?;
            s(base64::engine::general_purpose::STANDARD.encode(x.as_bytes()))
        }
        "b64dec" => {
            let [x] = strs(&vals)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(x.as_bytes())
                .map_err(|_| format!("{x:?} is not valid base64"))?;
            utf8(bytes, "base64", &x)
        }
        "b32enc" => {
            let [x] = strs(&vals)?;
            s(data_encoding::BASE32.encode(x.as_bytes()))
        }
        "b32dec" => {
            let [x] = strs(&vals)?;
            let bytes = data_encoding::BASE32
                .decode(x.as_bytes())
                .map_err(|_| format!("{x:?} is not valid base32"))?;
            utf8(bytes, "base32", &x)
        }
        "sha1sum" => {
            let [x] = strs(&vals)?;
            s(hex::encode(sha1::Sha1::digest(x.as_bytes())))
        }
        "sha256sum" => {
            let [x] = strs(&vals)?;
            s(hex::encode(sha2::Sha256::digest(x.as_bytes())))
        }
        "adler32sum" => {
            let [x] = strs(&vals)?;
            let mut a = adler2::Adler32::new();
            a.write_slice(x.as_bytes());
            s(a.checksum().to_string())
        }
        "uuidv4" => {
            super::args::want(&vals, 0)?;
            s(uuid::Uuid::new_v4().to_string())
        }
        "randAlphaNum" | "randAlpha" | "randAscii" | "randNumeric" => {
            let [n] = take(&vals)?;
            let n = usize::try_from(int_arg(n)?).map_err(|_| "negative length".to_string())?;
            too_large(n)?;
            let set: Vec<char> = match name {
                "randAlphaNum" => ('a'..='z').chain('A'..='Z').chain('0'..='9').collect(),
                "randAlpha" => ('a'..='z').chain('A'..='Z').collect(),
                "randNumeric" => ('0'..='9').collect(),
                _ => (' '..='~').collect(),
            };
            s(random_from(&set, n)?)
        }
        "shuffle" => {
            let [x] = take(&vals)?;
            let mut chars: Vec<char> = display(x).chars().collect();
            // Fisher-Yates with uniform indices from the OS generator
            for i in (1..chars.len()).rev() {
                let j = uniform(i as u64 + 1)? as usize;
                chars.swap(i, j);
            }
            s(chars.into_iter().collect())
        }
        other => Err(format!("function \"{other}\" not defined")),
    }
}

fn utf8(bytes: Vec<u8>, what: &str, x: &str) -> FnResult {
    String::from_utf8(bytes)
        .map(Value::String)
        .map_err(|_| format!("{what} {x:?} does not decode to utf-8 text"))
}

/// A uniform number below `bound` from the OS's random source.
fn uniform(bound: u64) -> Res<u64> {
    let zone = u64::MAX - u64::MAX % bound;
    loop {
        let mut buf = [0u8; 8];
        getrandom::fill(&mut buf).map_err(|e| format!("no random source: {e}"))?;
        let v = u64::from_le_bytes(buf);
        if v < zone {
            return Ok(v % bound);
        }
    }
}

fn random_from(set: &[char], n: usize) -> Res<String> {
    (0..n)
        .map(|_| uniform(set.len() as u64).map(|i| set[i as usize]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str, arg: &str) -> String {
        match call(name, vec![Value::String(arg.to_string())]) {
            Ok(Value::String(s)) => s,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn encodings_and_hashes_match_sprig() {
        assert_eq!(one("b32enc", "Hello"), "JBSWY3DP");
        assert_eq!(one("b32dec", "JBSWY3DP"), "Hello");
        assert_eq!(one("b64enc", "Hello"), "SGVsbG8=");
        assert_eq!(
            one("sha256sum", "Hello world!"),
            "c0535e4be2b79ffd93291305436bf889314e4a3faec05ecffcbb7df31ad9e51a"
        );
        assert_eq!(
            one("sha1sum", "Hello world!"),
            "d3486ae9136e7856bc42212385ea797094475802"
        );
        assert_eq!(one("adler32sum", "Hello world!"), "487130206");
        assert!(call("b32dec", vec![Value::String("!!".into())]).is_err());
    }

    #[test]
    fn random_strings_use_their_alphabet() {
        let n = Value::from(64);
        let Ok(Value::String(s)) = call("randNumeric", vec![n.clone()]) else {
            panic!()
        };
        assert_eq!(s.len(), 64);
        assert!(s.bytes().all(|c| c.is_ascii_digit()));
        let Ok(Value::String(s)) = call("randAlpha", vec![n]) else {
            panic!()
        };
        assert!(s.bytes().all(|c| c.is_ascii_alphabetic()));
        let Ok(Value::String(u)) = call("uuidv4", vec![]) else {
            panic!()
        };
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }

    #[test]
    fn refused_functions_say_why() {
        let e = call("env", vec![Value::String("HOME".into())]).unwrap_err();
        assert!(e.contains("not available in crtask"), "{e}");
        let e = call("genCA", vec![]).unwrap_err();
        assert!(e.contains("secrets"), "{e}");
    }
}
