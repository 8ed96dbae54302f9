//! Values the commands parse from their flags: a token lifetime, a claims object.

use serde_json::Value;

/// `300`, `300s`, `5m`, `1h`, `2d` → seconds.
pub(crate) fn parse_ttl(s: &str) -> Result<i64, String> {
    let (digits, unit) = s.trim().split_at(
        s.trim()
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(s.trim().len()),
    );
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("--ttl {s:?}: write e.g. 300, 300s, 5m or 1h"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("--ttl {s:?}: the unit is s, m, h or d")),
    };
    n.checked_mul(scale)
        .filter(|&t| t > 0)
        .ok_or_else(|| format!("--ttl {s:?} must be positive"))
}

/// `--claims`: a JSON object.
pub(crate) fn parse_claims(text: &str) -> Result<Value, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("--claims is not JSON: {e}"))?;
    if !v.is_object() {
        return Err("--claims must be a JSON object, e.g. '{\"plan\":\"pro\"}'".into());
    }
    Ok(v)
}
