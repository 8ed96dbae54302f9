fn main() {
    use tiergate::token::{Algorithm, Verifier};
    let secret = b"a benchmark secret that is long enough, 48 bytes";
    let now = chrono::Utc::now().timestamp();
    let payload = serde_json::json!({
        "sub": "usr_8f2a41", "email": "ada@example.com", "iss": "http://127.0.0.1:8080", "aud": "tiergate-demo",
        "iat": now, "exp": now + 3600, "jti": "b7d1e0f4a9c2",
        "claims": { "plan": "pro", "role": "admin", "trial_ends": "2026-04-15", "seats": "5" },
    });
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &payload,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap();
    let v = Verifier::builder()
        .hmac_secret(Algorithm::HS256, secret)
        .issuer("http://127.0.0.1:8080")
        .audience("tiergate-demo")
        .build()
        .unwrap();
    let t = chrono::Utc::now();
    let start = std::time::Instant::now();
    for _ in 0..2_000_000 {
        std::hint::black_box(v.verify(std::hint::black_box(&token), t).unwrap());
    }
    println!("{:?}/iter", start.elapsed() / 2_000_000);
}
