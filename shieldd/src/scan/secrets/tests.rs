//! Rule-table tests. Every sample token is synthetic: built here from a
//! seeded generator in the provider's documented shape.
use super::*;

const AN: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const UPN: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const LOWN: &str = "abcdefghijklmnopqrstuvwxyz0123456789";
const HEX: &str = "0123456789abcdef";
const DIG: &str = "0123456789";
const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
const ALPHA: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const B32: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// `n` pseudo-random characters of `alpha` (xorshift, seeded per call site).
fn g(alpha: &str, n: usize, seed: u64) -> String {
    let a = alpha.as_bytes();
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(a[(x % a.len() as u64) as usize])
        })
        .collect()
}

fn uuid(seed: u64) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        g(HEX, 8, seed),
        g(HEX, 4, seed + 1),
        g(HEX, 4, seed + 2),
        g(HEX, 4, seed + 3),
        g(HEX, 12, seed + 4)
    )
}

fn jwt(seed: u64) -> String {
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.{}",
        e.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
        e.encode(br#"{"sub":"4821","name":"svc","iat":1700000000}"#),
        g(URL, 43, seed)
    )
}

fn key_block(kind: &str, seed: u64) -> String {
    format!(
        "-----BEGIN {kind}-----\n{}\n{}\n-----END {kind}-----",
        g(B64, 64, seed),
        g(B64, 64, seed + 1)
    )
}

/// One positive sample per rule id.
fn samples() -> Vec<(&'static str, String)> {
    vec![
        ("aws-access-key-id", format!("id AKIA{}", g(B32, 16, 1))),
        ("aws-secret-access-key", format!("aws_secret_access_key = {}", g(AN, 40, 2))),
        ("aws-session-token", format!("AWS_SESSION_TOKEN={}", g(B64, 120, 3))),
        ("aws-mws-key", format!("amzn.mws.{}", uuid(4))),
        ("aws-bedrock-long-lived", format!("ABSK{}", g(AN, 120, 5))),
        ("aws-bedrock-short-lived", format!("bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t{}", g(AN, 40, 6))),
        ("gcp-api-key", format!("key AIzaSy{} ok", g(AN, 33, 7))),
        ("gcp-service-account-key-id", format!("\"private_key_id\": \"{}\"", g(HEX, 40, 8))),
        ("gcp-oauth-client-secret", format!("GOCSPX-{}", g(URL, 28, 9))),
        ("google-oauth-access-token", format!("ya29.{}", g(URL, 60, 10))),
        ("google-oauth-refresh-token", format!("1//0{}", g(URL, 60, 11))),
        ("azure-storage-connection", format!("DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey={}==;EndpointSuffix=core.windows.net", g(B64, 86, 12))),
        ("azure-sas-token", format!("https://a.blob.core.windows.net/c?sv=2022-11-02&ss=b&sp=r&se=2030-01-01&sig={}%3D", g(AN, 44, 13))),
        ("azure-ad-client-secret", format!("secret {}8Q~{} end", g(AN, 3, 14), g(AN, 34, 15))),
        ("azure-devops-pat", format!("AZURE_DEVOPS_PAT={}", g("abcdefghijklmnopqrstuvwxyz234567", 52, 16))),
        ("azure-openai-key", format!("AZURE_OPENAI_KEY={}", g(HEX, 32, 17))),
        ("github-pat", format!("ghp_{}", g(AN, 36, 18))),
        ("github-oauth", format!("gho_{}", g(AN, 36, 19))),
        ("github-app-server", format!("ghs_{}", g(AN, 36, 20))),
        ("github-app-user", format!("ghu_{}", g(AN, 36, 21))),
        ("github-refresh", format!("ghr_{}", g(AN, 76, 22))),
        ("github-fine-grained-pat", format!("github_pat_{}_{}", g(AN, 22, 23), g(AN, 59, 24))),
        ("gitlab-pat", format!("glpat-{}", g(AN, 20, 25))),
        ("gitlab-pipeline-trigger", format!("glptt-{}", g(HEX, 40, 26))),
        ("gitlab-runner-registration", format!("GR1348941{}", g(AN, 20, 27))),
        ("gitlab-runner-auth", format!("glrt-{}", g(AN, 20, 28))),
        ("gitlab-deploy-token", format!("gldt-{}", g(AN, 20, 29))),
        ("gitlab-feed-token", format!("glft-{}", g(AN, 20, 30))),
        ("gitlab-oauth-secret", format!("gloas-{}", g(AN, 64, 31))),
        ("gitlab-scim-token", format!("glsoat-{}", g(AN, 20, 32))),
        ("gitlab-incoming-mail", format!("glimt-{}", g(AN, 25, 33))),
        ("bitbucket-app-password", format!("ATBB{}", g(AN, 32, 34))),
        ("bitbucket-client-secret", format!("BITBUCKET_CLIENT_SECRET={}", g(AN, 40, 35))),
        ("atlassian-api-token", format!("ATATT3{}", g(URL, 186, 36))),
        ("atlassian-keyword-token", format!("JIRA_API_TOKEN={}", g(AN, 24, 37))),
        ("slack-bot-token", format!("xoxb-{}-{}-{}", g(DIG, 12, 38), g(DIG, 13, 39), g(AN, 24, 40))),
        ("slack-legacy-bot-token", format!("xoxb-{}-{}", g(DIG, 11, 41), g(AN, 24, 42))),
        ("slack-user-token", format!("xoxp-{}-{}-{}-{}", g(DIG, 10, 43), g(DIG, 11, 44), g(DIG, 12, 45), g(HEX, 32, 46))),
        ("slack-app-token", format!("xapp-1-{}-{}-{}", g(UPN, 11, 47), g(DIG, 13, 48), g(HEX, 64, 49))),
        ("slack-config-token", format!("xoxe.xoxp-1-{}", g(UPN, 166, 50))),
        ("slack-config-refresh", format!("xoxe-1-{}", g(UPN, 146, 51))),
        ("slack-legacy-token", format!("xoxs-{}-{}-{}-{}", g(DIG, 10, 52), g(DIG, 10, 53), g(DIG, 10, 54), g(HEX, 16, 55))),
        ("slack-legacy-workspace", format!("xoxa-2-{}", g(AN, 40, 56))),
        ("slack-webhook", format!("https://hooks.slack.com/services/T{}/B{}/{}", g(UPN, 8, 57), g(UPN, 8, 58), g(AN, 24, 59))),
        ("discord-bot-token", format!("M{}.{}.{}", g(AN, 23, 60), g(AN, 6, 61), g(AN, 27, 62))),
        ("discord-webhook", format!("https://discord.com/api/webhooks/{}/{}", g(DIG, 18, 63), g(URL, 68, 64))),
        ("discord-client-secret", format!("DISCORD_CLIENT_SECRET={}", g(AN, 32, 65))),
        ("telegram-bot-token", format!("TELEGRAM_TOKEN={}:AA{}", g(DIG, 10, 66), g(AN, 33, 67))),
        ("stripe-secret-key", format!("sk_live_{}", g(AN, 24, 68))),
        ("stripe-restricted-key", format!("rk_live_{}", g(AN, 24, 69))),
        ("stripe-webhook-secret", format!("whsec_{}", g(AN, 32, 70))),
        ("square-access-token", format!("EAAA{}", g(AN, 60, 71))),
        ("square-oauth-secret", format!("sq0csp-{}", g(URL, 43, 72))),
        ("braintree-access-token", format!("access_token$production${}${}", g(LOWN, 16, 73), g(HEX, 32, 74))),
        ("paypal-client-secret", format!("PAYPAL_CLIENT_SECRET={}", g(AN, 60, 75))),
        ("flutterwave-secret", format!("FLWSECK_TEST-{}-X", g(HEX, 32, 76))),
        ("duffel-token", format!("duffel_test_{}", g(URL, 43, 77))),
        ("shippo-token", format!("shippo_live_{}", g(HEX, 40, 78))),
        ("easypost-key", format!("EZAK{}", g(AN, 54, 79))),
        ("freemius-secret", format!("'secret_key' => 'sk_{}'", g(AN, 29, 80))),
        ("twilio-api-key", format!("SK{}", g(HEX, 32, 81))),
        ("twilio-auth-token", format!("TWILIO_AUTH_TOKEN={}", g(HEX, 32, 82))),
        ("sendgrid-api-key", format!("SG.{}.{}", g(URL, 22, 83), g(URL, 43, 84))),
        ("mailgun-api-key", format!("key-{}", g(LOWN, 32, 85))),
        ("mailgun-signing-key", format!("MAILGUN_SIGNING_KEY={}-{}-{}", g("abcdefgh0123456789", 32, 86), g("abcdefgh0123456789", 8, 87), g("abcdefgh0123456789", 8, 88))),
        ("mailchimp-api-key", format!("{}-us12", g(HEX, 32, 89))),
        ("mandrill-api-key", format!("MANDRILL_API_KEY={}", g(AN, 22, 90))),
        ("brevo-api-key", format!("xkeysib-{}-{}", g(HEX, 64, 91), g(AN, 16, 92))),
        ("messagebird-key", format!("MESSAGEBIRD_API_KEY={}", g(AN, 25, 93))),
        ("openai-project-key", format!("sk-proj-{}", g(URL, 80, 94))),
        ("openai-service-key", format!("sk-svcacct-{}", g(URL, 80, 95))),
        ("openai-admin-key", format!("sk-admin-{}", g(URL, 80, 96))),
        ("openai-legacy-key", format!("sk-{}T3BlbkFJ{}", g(AN, 20, 97), g(AN, 20, 98))),
        ("openai-user-key", format!("sk-{}", g(AN, 48, 99))),
        ("anthropic-api-key", format!("sk-ant-api03-{}AA", g(URL, 93, 100))),
        ("anthropic-admin-key", format!("sk-ant-admin01-{}AA", g(URL, 93, 101))),
        ("huggingface-token", format!("hf_{}", g(ALPHA, 34, 102))),
        ("huggingface-org-token", format!("api_org_{}", g(ALPHA, 34, 103))),
        ("cohere-api-key", format!("COHERE_API_KEY={}", g(AN, 40, 104))),
        ("groq-api-key", format!("gsk_{}", g(AN, 52, 105))),
        ("replicate-token", format!("r8_{}", g(AN, 37, 106))),
        ("perplexity-api-key", format!("pplx-{}", g(AN, 48, 107))),
        ("xai-api-key", format!("xai-{}", g(AN, 80, 108))),
        ("mistral-api-key", format!("MISTRAL_API_KEY={}", g(AN, 32, 109))),
        ("privateai-key", format!("PRIVATE_AI_KEY={}", g(LOWN, 32, 110))),
        ("npm-token", format!("npm_{}", g(AN, 36, 111))),
        ("npmrc-auth-token", format!("//registry.npmjs.org/:_authToken={}", g(AN, 36, 112))),
        ("pypi-token", format!("pypi-AgEIcHlwaS5vcmc{}", g(URL, 60, 113))),
        ("rubygems-key", format!("rubygems_{}", g(HEX, 48, 114))),
        ("clojars-token", format!("CLOJARS_{}", g(LOWN, 60, 115))),
        ("nuget-config-password", format!("<add key=\"ClearTextPassword\" value=\"{}\" />", g(AN, 12, 116))),
        ("dockerhub-pat", format!("dckr_pat_{}", g(URL, 27, 117))),
        ("docker-config-auth", format!("{{\"auths\":{{\"https://index.docker.io/v1/\":{{\"auth\":\"{}\"}}}}}}", g(B64, 40, 118))),
        ("artifactory-api-key", format!("AKCp{}", g(AN, 69, 119))),
        ("artifactory-reference-token", format!("cmVmd{}", g(AN, 59, 120))),
        ("heroku-api-key", format!("HEROKU_API_KEY={}", uuid(121))),
        ("heroku-api-key-v2", format!("HRKU-AA{}", g(URL, 58, 126))),
        ("digitalocean-pat", format!("dop_v1_{}", g(HEX, 64, 127))),
        ("digitalocean-oauth", format!("doo_v1_{}", g(HEX, 64, 128))),
        ("digitalocean-refresh", format!("dor_v1_{}", g(HEX, 64, 129))),
        ("shopify-access-token", format!("shpat_{}", g(HEX, 32, 130))),
        ("shopify-custom-app", format!("shpca_{}", g(HEX, 32, 131))),
        ("shopify-private-app", format!("shppa_{}", g(HEX, 32, 132))),
        ("shopify-shared-secret", format!("shpss_{}", g(HEX, 32, 133))),
        ("datadog-api-key", format!("DD_API_KEY={}", g(HEX, 32, 134))),
        ("newrelic-user-key", format!("NRAK-{}", g(UPN, 27, 135))),
        ("newrelic-insert-key", format!("NRII-{}", g(URL, 32, 136))),
        ("newrelic-browser-key", format!("NRJS-{}", g(HEX, 19, 137))),
        ("newrelic-license-key", format!("{}NRAL", g(HEX, 36, 138))),
        ("sentry-dsn", format!("https://{}@o4504.ingest.sentry.io/4504", g(HEX, 32, 139))),
        ("sentry-org-token", format!("sntrys_eyJ{}", g(B64, 80, 140))),
        ("sentry-user-token", format!("sntryu_{}", g(HEX, 64, 141))),
        ("databricks-token", format!("dapi{}", g(HEX, 32, 142))),
        ("vault-service-token", format!("hvs.{}", g(URL, 95, 143))),
        ("vault-batch-token", format!("hvb.{}", g(URL, 140, 144))),
        ("vault-legacy-token", format!("VAULT_TOKEN=s.{}", g(AN, 24, 145))),
        ("terraform-cloud-token", format!("{}.atlasv1.{}", g(AN, 14, 146), g(URL, 67, 147))),
        ("pulumi-token", format!("pul-{}", g(HEX, 40, 148))),
        ("doppler-token", format!("dp.pt.{}", g(AN, 43, 149))),
        ("cloudflare-origin-ca-key", format!("v1.0-{}-{}", g(HEX, 24, 150), g(HEX, 146, 151))),
        ("cloudflare-api-token", format!("CLOUDFLARE_API_TOKEN={}", g(AN, 40, 152))),
        ("grafana-cloud-token", format!("glc_{}", g(B64, 60, 153))),
        ("grafana-service-account", format!("glsa_{}_{}", g(AN, 32, 154), g(HEX, 8, 155))),
        ("dynatrace-token", format!("dt0c01.{}.{}", g(UPN, 24, 156), g(UPN, 64, 157))),
        ("flyio-token", format!("fo1_{}", g(URL, 43, 158))),
        ("planetscale-token", format!("pscale_tkn_{}", g(AN, 43, 159))),
        ("supabase-token", format!("sbp_{}", g(HEX, 40, 160))),
        ("scalingo-token", format!("tk-us-{}", g(URL, 48, 161))),
        ("openshift-user-token", format!("sha256~{} ", g(URL, 43, 162))),
        ("octopus-deploy-key", format!("API-{}", g(UPN, 26, 163))),
        ("infracost-token", format!("ico-{}", g(AN, 32, 164))),
        ("prefect-token", format!("pnu_{}", g(AN, 36, 165))),
        ("readme-token", format!("rdme_{}", g(LOWN, 70, 166))),
        ("clickhouse-cloud-secret", format!("4b1d{}", g(AN, 38, 167))),
        ("snyk-token", format!("SNYK_TOKEN={}", uuid(168))),
        ("sourcegraph-keyword-token", format!("SOURCEGRAPH_TOKEN={}", g(HEX, 40, 261))),
        ("curl-token-header", format!("curl -H \"X-Api-Token: {}\" https://api.internal", g(AN, 20, 262))),
        ("sonar-token", format!("squ_{}", g(HEX, 40, 173))),
        ("sonar-keyword-token", format!("SONAR_TOKEN={}", g(HEX, 40, 174))),
        ("sourcegraph-token", format!("sgp_{}_{}", g(HEX, 16, 175), g(HEX, 40, 176))),
        ("sumologic-access-id", format!("SUMO_ACCESS_ID=su{}", g(AN, 12, 177))),
        ("sumologic-access-key", format!("SUMO_ACCESS_KEY={}", g(AN, 64, 178))),
        ("sidekiq-secret", format!("BUNDLE_ENTERPRISE__CONTRIBSYS__COM={}:{}", g(HEX, 8, 179), g(HEX, 8, 180))),
        ("maxmind-license-key", format!("{}_{}_mmk", g(AN, 6, 181), g(AN, 29, 182))),
        ("hubspot-api-key", format!("HUBSPOT_API_KEY={}", uuid(183).to_uppercase())),
        ("intra42-secret", format!("s-s4t2ud-{}", g(HEX, 64, 188))),
        ("okta-token", format!("OKTA_API_TOKEN=00{}", g(AN, 40, 189))),
        ("meraki-api-key", format!("MERAKI_API_KEY={}", g(HEX, 40, 190))),
        ("etsy-token", format!("ETSY_API_KEY={}", g(LOWN, 24, 191))),
        ("age-secret-key", format!("AGE-SECRET-KEY-1{}", g("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58, 192))),
        ("alibaba-access-key", format!("LTAI{}", g(AN, 20, 193))),
        ("adobe-client-secret", format!("p8e-{}", g(AN, 32, 194))),
        ("airtable-pat", format!("pat{}.{}", g(AN, 14, 195), g(HEX, 64, 196))),
        ("contentful-pat", format!("CFPAT-{}", g(URL, 43, 197))),
        ("frameio-token", format!("fio-u-{}", g(URL, 64, 198))),
        ("figma-pat", format!("figd_{}", g(URL, 40, 199))),
        ("linear-api-key", format!("lin_api_{}", g(AN, 40, 200))),
        ("notion-secret", format!("secret_{}", g(AN, 43, 201))),
        ("notion-token", format!("ntn_{}{}", g(DIG, 11, 202), g(AN, 35, 203))),
        ("postman-api-key", format!("PMAK-{}-{}", g(HEX, 24, 204), g(HEX, 34, 205))),
        ("typeform-token", format!("tfp_{}", g(URL, 59, 206))),
        ("mapbox-secret-token", format!("sk.eyJ{}.{}", g(URL, 60, 207), g(URL, 22, 208))),
        ("facebook-access-token", format!("EAAB{}", g(AN, 100, 209))),
        ("facebook-app-token", format!("{}|{} ", g(DIG, 15, 210), g(URL, 27, 211))),
        ("facebook-secret", format!("FACEBOOK_APP_SECRET={}", g(HEX, 32, 212))),
        ("twitter-bearer-token", format!("AAAAAAAAAAAAAAAAAAAAA{}", g(AN, 50, 213))),
        ("dropbox-short-lived", format!("sl.{}", g(URL, 140, 214))),
        ("launchdarkly-key", format!("sdk-{}", uuid(215))),
        ("onepassword-service-token", format!("ops_eyJ{}", g(B64, 120, 220))),
        ("onepassword-secret-key", format!("A3-{}-{}-{}-{}-{}-{}", g(UPN, 6, 221), g(UPN, 6, 222), g(UPN, 5, 223), g(UPN, 5, 224), g(UPN, 5, 225), g(UPN, 5, 226))),
        ("kubernetes-secret-data", format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  password: {}\n", g(B64, 24, 227))),
        ("kubernetes-secret-data-first", format!("data:\n  password: {}\nkind: Secret\n", g(B64, 24, 228))),
        ("private-key-rsa", key_block("RSA PRIVATE KEY", 229)),
        ("private-key-ec", key_block("EC PRIVATE KEY", 231)),
        ("private-key-dsa", key_block("DSA PRIVATE KEY", 233)),
        ("private-key-openssh", key_block("OPENSSH PRIVATE KEY", 235)),
        ("private-key-pkcs8", key_block("PRIVATE KEY", 237)),
        ("private-key-encrypted", key_block("ENCRYPTED PRIVATE KEY", 239)),
        ("private-key-pgp", key_block("PGP PRIVATE KEY BLOCK", 241)),
        ("private-key-putty", format!("PuTTY-User-Key-File-2: ssh-rsa\nEncryption: none\nComment: k\nPublic-Lines: 1\n{}\nPrivate-Lines: 1\n{}\n", g(B64, 40, 243), g(B64, 40, 244))),
        ("postgres-url-password", format!("postgres://app:{}@db.internal:5432/app", g(AN, 12, 245))),
        ("mysql-url-password", format!("mysql://app:{}@db.internal/app", g(AN, 12, 246))),
        ("mongodb-url-password", format!("mongodb+srv://app:{}@cluster0.mongodb.net/db", g(AN, 12, 247))),
        ("redis-url-password", format!("redis://:{}@cache.internal:6379/0", g(AN, 12, 248))),
        ("amqp-url-password", format!("amqp://app:{}@mq.internal:5672/", g(AN, 12, 249))),
        ("mssql-url-password", format!("sqlserver://sa:{}@db.internal:1433", g(AN, 12, 250))),
        ("url-basic-auth", format!("https://deploy:{}@git.internal.net/repo.git", g(AN, 12, 251))),
        ("ado-connection-password", format!("Server=tcp:db.local,1433;Database=app;User Id=sa;Password={};", g(AN, 12, 252))),
        ("jdbc-password", format!("jdbc:mysql://db:3306/app?user=app&password={}", g(AN, 12, 253))),
        ("http-basic-auth-header", format!("Authorization: Basic {}", g(B64, 32, 254))),
        ("http-bearer-header", format!("Authorization: Bearer {}", g(AN, 40, 255))),
        ("http-auth-header-raw", format!("Authorization: {}", g(AN, 40, 256))),
        ("curl-user-password", format!("curl -u admin:{} https://api.internal", g(AN, 12, 257))),
        ("x-api-key-header", format!("X-API-Key: {}", g(AN, 32, 258))),
        ("private-key-header", "-----BEGIN OPENSSH PRIVATE KEY-----".to_string()),
        ("jwt", jwt(259)),
        ("jwt-base64", base64::engine::general_purpose::STANDARD.encode(jwt(260))),
    ]
}

#[test]
fn engine_builds() {
    assert!(ENGINE.is_some(), "a rule pattern failed to compile");
    for r in RULES {
        assert!(
            Regex::new(&asciify(r.re)).is_ok(),
            "{} does not compile",
            r.id
        );
    }
}

#[test]
fn every_rule_is_gated() {
    let Some(e) = ENGINE.as_ref() else {
        panic!("engine does not build");
    };
    // A rule with no gate word and no run gate would run on every text.
    for &(i, g) in &e.run_gated {
        assert!(g.is_some(), "{} has no gate", RULES[i].id);
    }
    // Gate tables name real rules.
    for (id, _) in MANUAL_GATES.iter().chain(LATE_GATES.iter()) {
        assert!(
            RULES.iter().any(|r| r.id == *id && r.keywords.is_empty()),
            "{id}"
        );
    }
    for g in &RUN_GATES {
        assert!(RULES.iter().any(|r| r.id == g.id), "{}", g.id);
    }
    // Facebook app tokens need 15 digits right before `|` or `%7C`.
    let fb = |t: &str| rules_in(gate(e, t).0).any(|i| RULES[i].id == "facebook-app-token");
    assert!(fb("app 123456789012345|abc"));
    assert!(fb("app 123456789012345%7Cabc"));
    assert!(!fb("| col | 12345 | 1234567890 |"));
    // The gates decide which rules run: prose runs none, a token its own.
    assert_eq!(
        gate(e, "A plain sentence about nothing.").0,
        [0; RULE_WORDS]
    );
    let ghp = "token = ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5";
    let ids: Vec<&str> = rules_in(gate(e, ghp).0).map(|i| RULES[i].id).collect();
    assert!(ids.contains(&"github-pat"), "{ids:?}");
    assert!(!ids.contains(&"slack-webhook"), "{ids:?}");
    assert!(gate(e, ghp).1, "`token =` is a generic assignment");
    assert!(!gate(e, "token ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5").1);
    // The Discord bot token rule needs a 24-byte token run.
    let discord = |t: &str| rules_in(gate(e, t).0).any(|i| RULES[i].id == "discord-bot-token");
    assert!(!discord("short words: abc_def-123 and x.y.z"));
    // ... right before a dot.
    assert!(discord(&format!("id {}.x", "Ab3_".repeat(6))));
    assert!(!discord(&format!("id {} x.", "Ab3_".repeat(6))));
}

#[test]
fn separator_gate_follows_the_generic_forms() {
    let after = |t: &str, w: &str| {
        let end = t.find(w).map_or(0, |i| i + w.len());
        separator_follows(t.as_bytes(), end)
    };
    assert!(after("api_key = 'x'", "key"));
    assert!(after("DB_PASSWORD: hunter2", "pass"));
    assert!(after("\"client_secret\", \"v\"", "secret"));
    assert!(after("my token is abc123", "token"));
    assert!(after("token ?= abc", "token"));
    assert!(after("[auth]=x", "auth"));
    // Prose: no assignment after the word.
    assert!(!after("the key to success", "key"));
    assert!(!after("tokens are counted", "token"));
    assert!(!after("password is", "pass"));
    assert!(!after("token", "token"));
    assert!(!after("tokenisation", "token"));
}

#[test]
fn entropy_gate_needs_a_token_after_the_assignment() {
    assert!(assigns_token(b"k = 'Zx8fK2mQ9pL4vR7tY1uW3sA6'"));
    assert!(assigns_token(b"k:Zx8fK2mQ9pL4vR7tY1uW3sA6"));
    assert!(!assigns_token(b"k = short, Zx8fK2mQ9pL4vR7tY1uW3sA6"));
    assert!(!assigns_token(b"note: Zx8fK2mQ9pL4vR7tY1 and more"));
    assert!(!assigns_token(b"="));
}

#[test]
fn lane_walk_finds_every_word_the_single_walk_finds() {
    let Some(e) = ENGINE.as_ref() else {
        panic!("engine does not build");
    };
    let Ok(start) = e.gates.start_state(Anchored::No) else {
        panic!("no unanchored start");
    };
    // Words at and across every piece boundary, for several lengths.
    for n in [LANE_MIN, LANE_MIN + 1, 300, 1000, 4099] {
        for shift in [0usize, 1, 3, 7, 20, 43] {
            let mut t = "x".repeat(n);
            let piece = n.div_ceil(LANES);
            for k in 1..LANES {
                let at = (k * piece).saturating_sub(shift).min(n);
                t.replace_range(at..at, "ghp_ password sk-ant-api03- ");
            }
            t.push_str("hooks.slack.com");
            let b = t.as_bytes();
            let mut lanes = Vec::new();
            each_gate_word(&e.gates, b, |w, end| lanes.push((w, end)));
            let mut single = Vec::new();
            walk(&e.gates, start, b, 0, &mut |w, end| single.push((w, end)));
            lanes.sort_unstable();
            lanes.dedup();
            single.sort_unstable();
            assert!(!single.is_empty());
            assert_eq!(lanes, single, "n {n} shift {shift}");
        }
    }
}

#[test]
fn at_least_100_rules_with_unique_ids() {
    assert!(RULES.len() >= 100, "only {} rules", RULES.len());
    let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate rule ids");
}

#[test]
fn every_rule_has_a_firing_sample() {
    let samples = samples();
    let mut missing = Vec::new();
    for (i, r) in RULES.iter().enumerate() {
        let Some((_, text)) = samples.iter().find(|(id, _)| *id == r.id) else {
            missing.push(format!("{}: no sample", r.id));
            continue;
        };
        if !raw_rule_ids(text).contains(&i) {
            missing.push(format!("{}: sample does not fire", r.id));
        }
    }
    for (id, _) in &samples {
        assert!(
            RULES.iter().any(|r| r.id == *id),
            "sample for unknown rule {id}"
        );
    }
    assert!(missing.is_empty(), "{missing:#?}");
}

#[test]
fn samples_survive_merging_as_secrets() {
    for (id, text) in samples() {
        let mut out = Vec::new();
        detect(&text, &mut out);
        assert!(!out.is_empty(), "{id}: no finding after merging");
        assert!(out.iter().all(|f| f.kind == FindingKind::Secret));
    }
}

fn found(text: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    detect(text, &mut out);
    out
}

#[test]
fn finding_span_is_the_secret_and_detail_hides_it() {
    let tok = format!("ghp_{}", g(AN, 36, 900));
    let text = format!("export GITHUB_TOKEN={tok}\n");
    let f = found(&text);
    assert_eq!(f.len(), 1, "{f:?}");
    let f = &f[0];
    assert_eq!(&text[f.start..f.end], tok);
    assert_eq!(f.ty, "github_token");
    assert!(!f.detail.contains(&tok));
}

#[test]
fn placeholders_do_not_fire() {
    for text in [
        "AKIAIOSFODNN7EXAMPLE",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "api_key = \"<your-key>\"",
        "API_KEY=your_api_key_here",
        "password = changeme",
        "token: ${GITHUB_TOKEN}",
        "password=$DB_PASSWORD",
        "secret = \"abcdefghijklmnopqrstuvwx\"",
        "token = \"1234567890123456789\"",
        "postgres://user:password@localhost/db",
        "curl -u $USER:$PASS https://x.invalid",
        "curl -u <user:password> https://x.invalid",
        "curl --user neo4j:[PASSWORD] http://x.invalid",
        "curl -i -u 'test:test'",
        "DATABRICKS_TOKEN=dapi123456789012345678a9bc01234defg5",
        "\"token4\": \"xoxp-572370529330-573807301142-572331691188-####################\"",
    ] {
        assert!(found(text).is_empty(), "{text}: {:?}", found(text));
    }
}

#[test]
fn placeholders_are_reported_only_on_request() {
    let text = "SNYK_TOKEN = \"AAAAAAAA-EXAMPLE-ABCD-1234567890AB\"";
    assert!(found(text).is_empty());
    let mut all = Vec::new();
    detect_including_placeholders(text, &mut all);
    assert_eq!(all.len(), 1, "{all:?}");
}

/// Counting digits and repeated chunks do not hide a value of a provider's
/// own format under the provider's name (ids hold such runs); the keyword
/// detectors, which have no format to go by, still drop them.
#[test]
fn provider_formats_report_hand_typed_fillers() {
    for text in [
        "SNYK_TOKEN = \"12345678-ABCD-ABCD-ABCD-1234567890AB\"",
        "const hubspotKey = \"12345678-ABCD-ABCD-ABCD-1234567890AB\"",
        "SONAR.LOGIN ?= \"12345678ABCDEFH1234567890ABCDEFH12345678\"",
        "const SONAR_TOKEN = \"squ_12345678ABCDEFH1234567890ABCDEFH12345678\"",
        "ARG token=sq0atp-812erere3wewew45678901",
        "\"access_token7\": \"xoxo-523423-234243-234233-e039d02840a0b9379c\"",
    ] {
        assert!(!found(text).is_empty(), "{text}");
    }
    // Markers still hold for provider formats: the alphabet typed out,
    // a documentation word, one repeated character.
    for text in [
        "AIzaSyabcdefghijklmnopqrstuvwxyz1234567",
        "AKIAIOSFODNN7EXAMPLE",
        "AKIAXXXXXXXXXXXXXXXX",
        "AKIATESTTESTTESTTEST",
        "SNYK_TOKEN = \"00000000-0000-0000-0000-000000000000\"",
        // Generic keys: fillers are placeholders there.
        "token = \"1234567890123456789\"",
        "\"token\": \"xoxp-1234-1234-1234-4ddbc191d40ee098cbaae6f3523ada2d\"",
        // Shapes with no provider (headers, URLs) keep every filter.
        "Authorization: Bearer 12345678901234567890",
        "curl -H \"Authorization: 1234567890123456789\" https://x.invalid",
    ] {
        assert!(found(text).is_empty(), "{text}: {:?}", found(text));
    }
}

/// Google API keys all start `AIzaSy`; `AIza` alone is not enough.
#[test]
fn gcp_api_keys_need_the_full_prefix() {
    let k = g(URL, 33, 950);
    assert!(!found(&format!("(AIzaSy{k})")).is_empty());
    assert!(found(&format!("(AIzay{k}X)")).is_empty());
}

/// Passwords are typed by people: a counting run inside one does not make
/// it a placeholder, a value that is nothing but a run does.
#[test]
fn passwords_with_runs_fire_whole_runs_do_not() {
    let f = found("password = 123456789a1234");
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].ty, "password");
    assert!(!found("db_password: \"Summer123456!\"").is_empty());
    for text in [
        "password = 12345678",
        "password = abcdefghij",
        "password: \"your_password_here\"",
        "skipped_sequential_false_positive = '0123456789a'",
    ] {
        assert!(found(text).is_empty(), "{text}: {:?}", found(text));
    }
}

/// Look-alikes of high-entropy assignments: hex edited by hand (both
/// cases), identifiers spelt out of words, SOPS ciphertext.
#[test]
fn entropy_lookalikes_do_not_fire() {
    for text in [
        "meraki-api-key: acdeFf05b1a6d4c890237bf08c5e6e8d2b4d0f2e",
        "div[data-cel-widget=\"desktop-rhf_SponsoredProductsRemoteSearchK2ClickPagination\"]",
        "mac: ENC[AES256_GCM,data:Tl1V1PuI5tZ0Hu3qxxzpDNeKQkuW0g/x/Mlp1yM6HaBqDr+r2FukLdYSYqjjJ3A8g+YkpvMib50M7j0V7zoX9sgCvMKE=,type:str]",
    ] {
        assert!(found(text).is_empty(), "{text}: {:?}", found(text));
    }
    // The same shapes with machine-made values still fire.
    assert!(!found(&format!("meraki-api-key: {}", g(HEX, 40, 951))).is_empty());
    assert!(!found(&format!("widget_key={}", g(AN, 40, 952))).is_empty());
    assert!(!found(&format!("mimi={}", g(AN, 44, 953))).is_empty());
    // Unnamed (or bare `key`) values written as code, `name = bare;`, are
    // expressions; the same value quoted, or in `NAME=value` form, fires.
    let v = g(AN, 44, 955);
    assert!(found(&format!("sumOfExposures = {v};")).is_empty());
    assert!(found(&format!("key = {v}")).is_empty());
    assert!(!found(&format!("key = \"{v}\"")).is_empty());
    assert!(!found(&format!("KEY={v}")).is_empty());
    assert!(!found(&format!("rookTable = '{v}'")).is_empty());
    assert!(code_assignment(" = "));
    assert!(!code_assignment("="));
    assert!(!code_assignment(": "));
    assert!(worded_identifier(
        "desktop-rhf_SponsoredProductsRemoteSearch"
    ));
    assert!(hand_edited_hex("acdeFf05b1a6d4c890237bf08c5e6e8d2b4d0f2e"));
    for seed in 0..200 {
        assert!(!worded_identifier(&g(AN, 40, 2000 + seed)), "seed {seed}");
        assert!(!hand_edited_hex(&g(AN, 40, 3000 + seed)), "seed {seed}");
    }
}

/// A key header closed a few bytes later by its END line, with no key
/// material between, is a template, not a leak.
#[test]
fn key_header_with_an_empty_body_does_not_fire() {
    for text in [
        "-----BEGIN PRIVATE KEY-----\nanything\n-----END PRIVATE KEY-----",
        "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----\n",
    ] {
        assert!(found(text).is_empty(), "{text}: {:?}", found(text));
    }
    let f = found(&key_block("PRIVATE KEY", 954));
    assert!(f.iter().any(|x| x.ty == "private_key"), "{f:?}");
}

/// Provider-named assignments whose formats were narrower than the
/// providers' own: Sidekiq licence pairs (hex words are common in them),
/// Sonar tokens in either case, raw `Authorization` values with symbols.
#[test]
fn widened_provider_forms_fire() {
    for text in [
        "export BUNDLE_ENTERPRISE__CONTRIBSYS__COM=cafebabe:deadbeef",
        "BUNDLE_GEMS__CONTRIBSYS__COM: \"cafebabe:deadbeef\"",
        "const SONAR_LOGIN = \"5Qk1LnbG0aCwKx9M2dRvT7uYe4HsJ8pZ3fNiB6oW\"",
        "curl -L -H \"Authorization: sha256~bRLFnzd5@=-.a+/hgdS\"",
    ] {
        assert!(!found(text).is_empty(), "{text}");
    }
    for text in [
        "export BUNDLE_ENTERPRISE__CONTRIBSYS__COM=$SIDEKIQ_LICENSE",
        "the sonar login page",
        "Authorization: see https://example.invalid/docs",
    ] {
        assert!(found(text).is_empty(), "{text}: {:?}", found(text));
    }
}

#[test]
fn prose_about_passwords_does_not_fire() {
    for text in [
        "Please choose a strong password that you do not reuse.",
        "The password is required to log in.",
        "Store the token in an environment variable, never in code.",
        "password = os.environ[\"DB_PASSWORD\"]",
        "token = get_token()",
        "password: ********",
        "max_tokens = 4096",
        "credentialsId: 'ff083f76-7804-4ef1-80e4-fe975bb9141b'",
        "secret_length = X25519.secret_length",
        "notes = \"Maven - io.jsonwebtoken:jjwt-jackson-0.11.2\"",
        "snowflake.password=\nnext_line = 1",
        "sumOfExposures = sumOfExposures;",
        "ReactNativeCameraKit: f15a5a04b0f6dc6073e6db0296e6ef2d8b8d2522",
        "\"bucket_key\": \"SalesResults-1.2\"",
        "schemaKey = 'DOC_Vector_5_32'",
    ] {
        assert!(found(text).is_empty(), "{text}: {:?}", found(text));
    }
}

#[test]
fn generic_keyword_entropy() {
    let v = g(AN, 32, 901);
    let f = found(&format!("client_secret = \"{v}\""));
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].ty, "generic_secret");
    let f = found("db_password: \"Tr0ub4dor&3\"");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].ty, "password");
    // A keyless assignment of a random-looking value.
    let v = g(AN, 40, 906);
    let f = found(&format!("mimi={v}"));
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].ty, "high_entropy_string");
    // Identifiers are not secrets, however random.
    assert!(found(&format!("id = '{v}'")).is_empty());
    // The same value as a URL parameter is left to the exfiltration detector.
    assert!(found(&format!("https://x.io/a?mimi={v}")).is_empty());
    // Keyword with a low-entropy word value.
    assert!(found("secret_sauce = tomatoes").is_empty());
}

#[test]
fn jwt_requires_a_real_header() {
    assert!(!found(&jwt(902)).is_empty());
    // Same shape, but the header decodes to JSON without "alg".
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let fake = format!(
        "{}.{}.{}",
        e.encode(br#"{"typ":"JWT","kid":"k1"}"#),
        e.encode(br#"{"sub":"4821"}"#),
        g(URL, 43, 903)
    );
    assert!(found(&fake).is_empty(), "{:?}", found(&fake));
}

#[test]
fn lookalike_prefixes_do_not_fire() {
    for text in [
        "ghp_short",
        "sk-not-a-key",
        "the AKIA prefix is used by AWS",
        "-----BEGIN RSA PRIVATE KEY-----\\n\" + key",
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----",
        "https://hooks.slack.com/services/",
        "xoxb-not-a-token",
    ] {
        assert!(found(text).is_empty(), "{text}: {:?}", found(text));
    }
}

#[test]
fn key_header_alone_fires_but_public_key_does_not() {
    let f = found("-----BEGIN OPENSSH PRIVATE KEY-----\n");
    assert!(f.iter().any(|x| x.ty == "private_key"), "{f:?}");
    assert!(found("-----BEGIN PUBLIC KEY-----\n").is_empty());
    assert!(found("the private key file is ~/.ssh/id_ed25519").is_empty());
}

#[test]
fn csrf_authenticity_tokens_do_not_fire() {
    let v = g(URL, 86, 910);
    let text = format!("<input type=\"hidden\" name=\"authenticity_token\" value=\"{v}\" />");
    assert!(found(&text).is_empty(), "{:?}", found(&text));
    let text = format!("authenticity_token = {v}");
    assert!(found(&text).is_empty(), "{:?}", found(&text));
}

#[test]
fn placeholder_helpers() {
    assert!(is_placeholder("aaaaaaaaaa"));
    assert!(is_placeholder("abcdefghij"));
    assert!(is_placeholder("9876543210"));
    assert!(is_placeholder("${VAR}"));
    assert!(is_placeholder(
        "xoxp-1234-1234-1234-4ddbc191d40ee098cbaae6f3523ada2d"
    ));
    assert!(is_placeholder("Zq9xMtQ2Zq9xLp4wZq9x"));
    for seed in 0..200 {
        assert!(!is_placeholder(&g(AN, 40, 1000 + seed)), "seed {seed}");
    }
    assert!(!is_placeholder(&g(AN, 20, 904)));
    assert!(shannon_entropy("aaaa") < 0.01);
    assert!(shannon_entropy(&g(AN, 64, 905)) > 4.5);
}

#[test]
fn huge_and_odd_inputs_are_bounded() {
    let big = "ghp_".repeat(50_000);
    let _ = found(&big);
    let _ = found("password=\u{1F600}\u{1F600}\u{1F600}\u{1F600}\u{1F600}");
    let _ = found("");
}

#[test]
fn kubernetes_secret_forms() {
    let v = g(B64, 40, 907);
    for text in [
        format!("apiVersion: v1\nkind: Secret\ndata:\n  # base64 of the password\n  key: {v}\n"),
        format!("data:\n  .dockercfg: >\n    {v}\nmetadata:\n  name: x\nkind: Secret"),
        format!("kind: secret\ndata:\n\textra: \"{v}\"\n"),
    ] {
        let f = found(&text);
        assert!(
            f.iter().any(|x| x.ty == "kubernetes_secret"),
            "{text}: {f:?}"
        );
    }
    // A ConfigMap is not a Secret.
    let cm = format!("kind: ConfigMap\ndata:\n  key: {}\n", "plain-value");
    assert!(found(&cm).is_empty(), "{:?}", found(&cm));
}
