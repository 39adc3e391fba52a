//! The provider rule table. Every pattern here was written for shieldd from
//! the providers' own descriptions of their token formats (prefix, alphabet,
//! length); none is taken from another scanner's rule file.
//!
//! A rule's secret is the named group `s` when the pattern has one, else the
//! whole match. `keywords` (lower-case) gate rules whose pattern alone is too
//! generic: the rule only runs when one of them occurs somewhere in the text.

/// Extra validation a rule's match must pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// A provider's own format: only values that mark themselves as
    /// placeholders (`EXAMPLE`, `xxxx`, `${VAR}`, one repeated character,
    /// the alphabet typed out) are dropped; counting digits are not, since
    /// the prefix and shape are the evidence and ids hold such runs.
    Plain,
    /// A generic shape (an HTTP header, a URL, a connection string): every
    /// placeholder filter applies, hand-typed fillers (`12345678`) included.
    Loose,
    /// A private-key header alone: reported unless an `-----END` line
    /// follows with too little between them to be key material.
    KeyHeader,
    /// Header must base64url-decode to a JSON object with an `alg` member.
    Jwt,
    /// A key block: structure is the evidence, no placeholder filter on the body.
    Block,
    /// `user:password` (curl `-u`): some non-empty side must be a real value.
    UserPass,
}

/// One provider-specific secret rule.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Unique rule id (appears in the finding detail).
    pub id: &'static str,
    /// The finding `type`.
    pub ty: &'static str,
    /// The pattern; group `s`, if present, is the secret.
    pub re: &'static str,
    /// Lower-case words of which one must occur in the text (empty: always run).
    pub keywords: &'static [&'static str],
    /// Minimum Shannon entropy (bits per byte) of the secret; 0 disables.
    pub min_entropy: f32,
    /// Finding score.
    pub score: f32,
    /// Extra validation.
    pub check: Check,
}

macro_rules! rule {
    ($id:literal, $ty:literal, $score:literal, [$($kw:literal),*], $ent:literal, $re:literal) => {
        Rule { id: $id, ty: $ty, re: $re, keywords: &[$($kw),*], min_entropy: $ent, score: $score, check: Check::Plain }
    };
    ($id:literal, $ty:literal, $score:literal, [$($kw:literal),*], $ent:literal, $re:literal, $check:ident) => {
        Rule { id: $id, ty: $ty, re: $re, keywords: &[$($kw),*], min_entropy: $ent, score: $score, check: Check::$check }
    };
}

/// Value shape after `key = ` in keyword-gated rules: optional quotes around it.
/// (Written out in each pattern, since `regex` has no sub-pattern reuse.)
#[rustfmt::skip]
pub const RULES: &[Rule] = &[
    // ---- AWS
    rule!("aws-access-key-id", "aws_access_key", 0.95, [], 0.0, r"\b(?P<s>(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA)[A-Z2-7]{16})\b"),
    rule!("aws-secret-access-key", "aws_secret_key", 0.9, ["aws", "secret_access", "secretaccess"], 3.5, r#"(?i)(?:\b|_)(?:aws|secret_?access)(?:\b|[_.-]|(?-i:[A-Z]))[\w.-]{0,30}(?:secret|key)[\w.-]{0,20}["']?\s*(?:[:=]|=>)\s*["']?(?P<s>[A-Za-z0-9/+]{40})(?:["'\s,;]|$)"#),
    rule!("aws-session-token", "aws_session_token", 0.9, ["session"], 4.0, r#"(?i)aws_?session_?token["']?\s*(?:[:?+]{0,3}=>?|:)\s*["']?(?P<s>[A-Za-z0-9/+=]{100,})"#),
    rule!("aws-mws-key", "aws_mws_key", 0.95, [], 0.0, r"\bamzn\.mws\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"),
    rule!("aws-bedrock-long-lived", "aws_bedrock_key", 0.9, [], 4.0, r"\bABSK[A-Za-z0-9+/]{109,269}={0,2}"),
    rule!("aws-bedrock-short-lived", "aws_bedrock_key", 0.9, [], 0.0, r"\bbedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t[A-Za-z0-9+/=%&.-]{20,}"),
    // ---- Google
    rule!("gcp-api-key", "gcp_api_key", 0.9, [], 3.5, r"\b(?P<s>AIzaSy[0-9A-Za-z_-]{33})(?:[^0-9A-Za-z_-]|$)"),
    rule!("gcp-service-account-key-id", "gcp_service_account", 0.9, ["private_key_id"], 3.0, r#""private_key_id"\s*:\s*"(?P<s>[0-9a-f]{40})""#),
    rule!("gcp-oauth-client-secret", "gcp_oauth_secret", 0.95, [], 0.0, r"\b(?P<s>GOCSPX-[A-Za-z0-9_-]{28})"),
    rule!("google-oauth-access-token", "google_oauth_token", 0.9, [], 3.5, r"\b(?P<s>ya29\.[0-9A-Za-z_-]{30,})"),
    rule!("google-oauth-refresh-token", "google_oauth_token", 0.85, [], 3.5, r"\b(?P<s>1//0[0-9A-Za-z_-]{40,})"),
    // ---- Azure
    rule!("azure-storage-connection", "azure_storage_key", 0.95, ["accountkey"], 0.0, r"(?i)AccountName=[^;\s]+;\s*AccountKey=(?P<s>[A-Za-z0-9+/=]{80,90})"),
    rule!("azure-sas-token", "azure_sas_token", 0.85, ["sig="], 0.0, r"\bsv=\d{4}-\d{2}-\d{2}&[^\s'\x22]{0,300}?\bsig=(?P<s>[A-Za-z0-9%+/=]{30,})"),
    rule!("azure-ad-client-secret", "azure_client_secret", 0.9, ["q~"], 3.0, r"(?:^|[^A-Za-z0-9_~.-])(?P<s>[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34})(?:[^A-Za-z0-9_~.-]|$)"),
    rule!("azure-devops-pat", "azure_devops_pat", 0.8, ["azure", "devops", "ado_"], 3.0, r#"(?i)(?:\b|_)(?:azure|devops|ado)(?:\b|[_.-]|(?-i:[A-Z]))[\w.-]{0,25}["']?\s*(?:[:?+]{0,3}=>?|:)\s*["']?(?P<s>[a-z2-7]{52})\b"#),
    rule!("azure-openai-key", "azure_api_key", 0.8, ["azure"], 3.0, r#"(?i)(?:\b|_)azure(?:\b|[_.-]|(?-i:[A-Z]))[\w.-]{0,30}key[\w.-]{0,10}["']?\s*(?:[:?+]{0,3}=>?|:)\s*["']?(?P<s>[a-f0-9]{32})\b"#),
    // ---- GitHub
    rule!("github-pat", "github_token", 0.95, [], 3.0, r"\b(?P<s>ghp_[A-Za-z0-9]{36})\b"),
    rule!("github-oauth", "github_token", 0.95, [], 3.0, r"\b(?P<s>gho_[A-Za-z0-9]{36})\b"),
    rule!("github-app-server", "github_token", 0.95, [], 3.0, r"\b(?P<s>ghs_[A-Za-z0-9]{36})\b"),
    rule!("github-app-user", "github_token", 0.95, [], 3.0, r"\b(?P<s>ghu_[A-Za-z0-9]{36})\b"),
    rule!("github-refresh", "github_token", 0.95, [], 3.0, r"\b(?P<s>ghr_[A-Za-z0-9]{36,76})\b"),
    rule!("github-fine-grained-pat", "github_token", 0.95, [], 3.0, r"\b(?P<s>github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})\b"),
    // ---- GitLab
    rule!("gitlab-pat", "gitlab_token", 0.95, [], 3.0, r"\b(?P<s>glpat-[A-Za-z0-9_-]{20,300}(?:\.[0-9a-z]{9})?)"),
    rule!("gitlab-pipeline-trigger", "gitlab_token", 0.95, [], 3.0, r"\b(?P<s>glptt-[0-9a-f]{40})\b"),
    rule!("gitlab-runner-registration", "gitlab_token", 0.95, [], 3.0, r"\b(?P<s>GR1348941[A-Za-z0-9_-]{20})"),
    rule!("gitlab-runner-auth", "gitlab_token", 0.95, [], 3.0, r"\b(?P<s>glrt-[A-Za-z0-9_-]{20,})"),
    rule!("gitlab-deploy-token", "gitlab_token", 0.95, [], 3.0, r"\b(?P<s>gldt-[A-Za-z0-9_-]{20,})"),
    rule!("gitlab-feed-token", "gitlab_token", 0.9, [], 3.0, r"\b(?P<s>glft-[A-Za-z0-9_-]{20,})"),
    rule!("gitlab-oauth-secret", "gitlab_token", 0.95, [], 3.0, r"\b(?P<s>gloas-[A-Za-z0-9_-]{64})"),
    rule!("gitlab-scim-token", "gitlab_token", 0.95, [], 3.0, r"\b(?P<s>glsoat-[A-Za-z0-9_-]{20,})"),
    rule!("gitlab-incoming-mail", "gitlab_token", 0.9, [], 3.0, r"\b(?P<s>glimt-[A-Za-z0-9_-]{25})"),
    // ---- Bitbucket / Atlassian
    rule!("bitbucket-app-password", "bitbucket_token", 0.9, [], 3.0, r"\b(?P<s>ATBB[A-Za-z0-9_=.-]{28,})"),
    rule!("bitbucket-client-secret", "bitbucket_token", 0.8, ["bitbucket"], 3.5, r#"(?i)(?:\b|_)bitbucket(?:\b|[_.-]|(?-i:[A-Z]))[\w.-]{0,20}(?:secret|key|token|password)[\w.-]{0,10}["']?\s*(?:[:?+]{0,3}=>?|:)\s*["']?(?P<s>[A-Za-z0-9_=-]{32,64})\b"#),
    rule!("atlassian-api-token", "atlassian_token", 0.95, [], 3.5, r"\b(?P<s>ATATT3[A-Za-z0-9_=-]{180,})"),
    rule!("atlassian-keyword-token", "atlassian_token", 0.8, ["atlassian", "jira", "confluence"], 3.5, r#"(?i)(?:\b|_)(?:atlassian|jira|confluence)(?:\b|[_.-]|(?-i:[A-Z]))[\w.-]{0,20}(?:token|key|secret)[\w.-]{0,10}["']?\s*(?:[:?+]{0,3}=>?|:)\s*["']?(?P<s>[A-Za-z0-9]{24})\b"#),
    // ---- Slack
    rule!("slack-bot-token", "slack_token", 0.95, [], 3.0, r"\b(?P<s>xoxb-\d{8,14}-\d{8,14}-[A-Za-z0-9]{24,34})\b"),
    rule!("slack-legacy-bot-token", "slack_token", 0.9, [], 3.0, r"\b(?P<s>xoxb-\d{8,14}-[A-Za-z0-9]{18,26})\b"),
    rule!("slack-user-token", "slack_token", 0.95, [], 3.0, r"\b(?P<s>xox[pe](?:-\d{8,14}){3}-[A-Za-z0-9]{28,34})\b"),
    rule!("slack-app-token", "slack_token", 0.95, [], 3.0, r"(?i)\b(?P<s>xapp-\d-[A-Z0-9]{9,12}-\d{10,14}-[a-f0-9]{64})\b"),
    rule!("slack-config-token", "slack_token", 0.95, [], 3.0, r"(?i)\b(?P<s>xoxe\.xox[bp]-\d-[A-Z0-9]{150,180})\b"),
    rule!("slack-config-refresh", "slack_token", 0.95, [], 3.0, r"(?i)\b(?P<s>xoxe-\d-[A-Z0-9]{140,150})\b"),
    rule!("slack-legacy-token", "slack_token", 0.9, [], 3.0, r"\b(?P<s>xox[os]-\d{3,}-\d{3,}-\d{3,}-[A-Fa-f0-9]{8,})\b"),
    rule!("slack-legacy-workspace", "slack_token", 0.9, [], 2.5, r"\b(?P<s>xox[ar]-(?:\d+-)*[0-9A-Za-z]{8,48})\b"),
    rule!("slack-webhook", "slack_webhook", 0.95, [], 0.0, r"(?i)https?://hooks\.slack\.com/(?:services|workflows|triggers)/(?P<s>[A-Za-z0-9+/_-]{30,})"),
    // ---- Discord / Telegram
    rule!("discord-bot-token", "discord_token", 0.85, [], 3.5, r"\b(?P<s>[MNO][A-Za-z0-9_-]{23,25}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38})\b"),
    rule!("discord-webhook", "discord_webhook", 0.95, [], 0.0, r"https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d{17,20}/(?P<s>[A-Za-z0-9_-]{60,68})"),
    rule!("discord-client-secret", "discord_token", 0.8, ["discord"], 3.5, r#"(?i)(?:\b|_)discord(?:\b|[_.-]|(?-i:[A-Z]))[\w.-]{0,20}(?:secret|token)[\w.-]{0,10}["']?\s*(?:[:?+]{0,3}=>?|:)\s*["']?(?P<s>[A-Za-z0-9_-]{32})\b"#),
    rule!("telegram-bot-token", "telegram_bot_token", 0.9, [], 3.0, r"\b(?P<s>\d{8,10}:AA[A-Za-z0-9_-]{33})(?:[^A-Za-z0-9_-]|$)"),
    // ---- Payments
    rule!("stripe-secret-key", "stripe_key", 0.95, [], 3.0, r"\b(?P<s>sk_(?:live|test)_[A-Za-z0-9]{24,99})\b"),
    rule!("stripe-restricted-key", "stripe_key", 0.95, [], 3.0, r"\b(?P<s>rk_(?:live|test)_[A-Za-z0-9]{24,99})\b"),
    rule!("stripe-webhook-secret", "stripe_key", 0.9, [], 3.0, r"\b(?P<s>whsec_[A-Za-z0-9]{32,})\b"),
    rule!("square-access-token", "square_token", 0.9, [], 3.0, r"\b(?P<s>(?:EAAA|sq0atp-)[A-Za-z0-9_-]{22,60})\b"),
    rule!("square-oauth-secret", "square_token", 0.95, [], 3.0, r"\b(?P<s>sq0csp-[A-Za-z0-9_-]{43})"),
    rule!("braintree-access-token", "braintree_token", 0.95, [], 0.0, r"\b(?P<s>access_token\$(?:production|sandbox)\$[0-9a-z]{16}\$[0-9a-f]{32})\b"),
    rule!("paypal-client-secret", "paypal_secret", 0.8, ["paypal"], 3.5, r#"(?i)(?:\b|_)paypal(?:\b|[_.-]|(?-i:[A-Z]))[\w.-]{0,20}(?:secret|key)[\w.-]{0,10}["']?\s*(?:[:?+]{0,3}=>?|:)\s*["']?(?P<s>[A-Za-z0-9_-]{40,80})\b"#),
    rule!("flutterwave-secret", "flutterwave_key", 0.95, [], 3.0, r"\b(?P<s>FLWSECK(?:_TEST)?-[a-fA-F0-9]{32}-X)\b"),
    rule!("duffel-token", "duffel_token", 0.95, [], 3.0, r"\b(?P<s>duffel_(?:test|live)_[A-Za-z0-9_=-]{43})"),
    rule!("shippo-token", "shippo_token", 0.95, [], 3.0, r"\b(?P<s>shippo_(?:live|test)_[a-f0-9]{40})\b"),
    rule!("easypost-key", "easypost_key", 0.95, [], 3.0, r"\b(?P<s>EZ[AT]K[A-Za-z0-9]{54})\b"),
    rule!("freemius-secret", "freemius_key", 0.8, ["secret_key", "freemius"], 3.0, r#"(?i)["']secret_key["']\s*=>\s*["'](?P<s>sk_[A-Za-z0-9<>()+*\[\]:;.!?-]{29})["']"#),
    // ---- Messaging / e-mail
    rule!("twilio-api-key", "twilio_key", 0.9, [], 3.0, r"\b(?P<s>SK[0-9a-fA-F]{32})\b"),
    rule!("twilio-auth-token", "twilio_key", 0.8, ["twilio"], 3.0, r#"(?i)(?:\b|_)twilio(?:\b|[_.-]|(?-i:[A-Z]))[\w.-]{0,25}["']?\s*(?:[:?+]{0,3}=>?|:)\s*["']?(?P<s>[0-9a-f]{32})\b"#),
    rule!("sendgrid-api-key", "sendgrid_key", 0.95, [], 3.0, r"\b(?P<s>SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43})(?:[^A-Za-z0-9_-]|$)"),
    rule!("mailgun-api-key", "mailgun_key", 0.9, ["key-"], 3.0, r"(?:^|[^A-Za-z0-9._/-])(?P<s>key-[0-9a-z]{32})\b"),
    rule!("mailgun-signing-key", "mailgun_key", 0.8, ["mailgun"], 3.0, r#"(?i)(?:\b|_)mailgun(?:\b|[_.-]|(?-i:[A-Z]))[\w.-]{0,25}["']?\s*(?:[:?+]{0,3}=>?|:)\s*["']?(?P<s>[a-h0-9]{32}-[a-h0-9]{8}-[a-h0-9]{8})\b"#),
    rule!("mailchimp-api-key", "mailchimp_key", 0.9, [], 3.0, r"\b(?P<s>[0-9a-f]{32}-us\d{1,2})\b"),
    rule!("mandrill-api-key", "mailchimp_key", 0.8, ["mandrill"], 3.0, r#"(?i)(?:\b|_)mandrill(?:\b|[_.-]|(?-i:[A-Z]))[\w.-]{0,25}["']?\s*(?:[:?+]{0,3}=>?|:)\s*["']?(?P<s>[A-Za-z0-9_-]{22})\b"#),
    rule!("brevo-api-key", "brevo_key", 0.95, [], 3.0, r"\b(?P<s>xkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16})\b"),
    rule!("messagebird-key", "messagebird_key", 0.8, ["messagebird", "message_bird", "message-bird"], 3.0, r#"(?i)(?:\b|_)message[_-]?bird(?:\b|[_.-]|(?-i:[A-Z]))[\w.-]{0,25}["']?\s*(?:[:?+]{0,3}=>?|:)\s*["']?(?P<s>[A-Za-z0-9]{25}|[a-h0-9]{8}-[a-h0-9]{4}-[a-h0-9]{4}-[a-h0-9]{4}-[a-h0-9]{12})\b"#),
    // ---- AI providers
    rule!("openai-project-key", "openai_key", 0.95, [], 3.5, r"\b(?P<s>sk-proj-[A-Za-z0-9_-]{40,200})"),
    rule!("openai-service-key", "openai_key", 0.95, [], 3.5, r"\b(?P<s>sk-svcacct-[A-Za-z0-9_-]{40,200})"),
    rule!("openai-admin-key", "openai_key", 0.95, [], 3.5, r"\b(?P<s>sk-admin-[A-Za-z0-9_-]{40,200})"),
    rule!("openai-legacy-key", "openai_key", 0.95, [], 3.0, r"\b(?P<s>sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})\b"),
    rule!("openai-user-key", "openai_key", 0.85, [], 4.0, r"\b(?P<s>sk-[A-Za-z0-9]{48})\b"),
    rule!("anthropic-api-key", "anthropic_key", 0.95, [], 3.5, r"\b(?P<s>sk-ant-api03-[A-Za-z0-9_-]{90,100}AA)(?:[^A-Za-z0-9_-]|$)"),
    rule!("anthropic-admin-key", "anthropic_key", 0.95, [], 3.5, r"\b(?P<s>sk-ant-admin01-[A-Za-z0-9_-]{90,100}AA)(?:[^A-Za-z0-9_-]|$)"),
    rule!("huggingface-token", "huggingface_token", 0.9, [], 3.5, r"\b(?P<s>hf_[A-Za-z]{34})\b"),
    rule!("huggingface-org-token", "huggingface_token", 0.9, [], 3.5, r"\b(?P<s>api_org_[A-Za-z]{34})\b"),
    rule!("cohere-api-key", "cohere_key", 0.8, ["cohere", "co_api_key"], 3.5, r#"(?i)(?:\b|_)(?:cohere|co_api_key)(?:\b|[_.-]|(?-i:[A-Z]))[\w.-]{0,20}["']?\s*(?:[:?+]{0,3}=>?|:)\s*["']?(?P<s>[A-Za-z0-9]{40})\b"#),
    rule!("groq-api-key", "groq_key", 0.95, [], 3.5, r"\b(?P<s>gsk_[A-Za-z0-9]{52})\b"),
    rule!("replicate-token", "replicate_token", 0.95, [], 3.5, r"(?:^|[^A-Za-z0-9._/-])(?P<s>r8_[A-Za-z0-9]{37})\b"),
    rule!("perplexity-api-key", "perplexity_key", 0.95, [], 3.5, r"\b(?P<s>pplx-[A-Za-z0-9]{48})\b"),
    rule!("xai-api-key", "xai_key", 0.95, [], 3.5, r"\b(?P<s>xai-[A-Za-z0-9]{80})\b"),
    rule!("mistral-api-key", "mistral_key", 0.8, ["mistral"], 3.5, r#"(?i)(?:\b|_)mistral(?:\b|[_.-]|(?-i:[A-Z]))[\w.-]{0,20}["']?\s*(?:[:?+]{0,3}=>?|:)\s*["']?(?P<s>[A-Za-z0-9]{32})\b"#),
    rule!("privateai-key", "privateai_key", 0.8, ["private_ai", "private-ai", "privateai"], 3.0, r#"(?i)(?:\b|_)private[_-]?ai(?:\b|[_.-]|(?-i:[A-Z]))[\w.-]{0,20}["']?\s*(?:[:?+]{0,3}=>?|:)\s*["']?(?P<s>[a-z0-9]{32})\b"#),
    // ---- Package registries, CI, cloud
    rule!("npm-token", "npm_token", 0.95, [], 3.0, r"\b(?P<s>npm_[A-Za-z0-9]{36})\b"),
    rule!("npmrc-auth-token", "npm_token", 0.9, ["_authtoken"], 3.0, r"//[^\s/]+/(?:[^\s]*/)?:_authToken=(?P<s>[A-Za-z0-9_.-]{20,})"),
    rule!("pypi-token", "pypi_token", 0.95, [], 0.0, r"\b(?P<s>pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,})"),
    rule!("rubygems-key", "rubygems_key", 0.95, [], 3.0, r"\b(?P<s>rubygems_[a-f0-9]{48})\b"),
    rule!("clojars-token", "clojars_token", 0.95, [], 3.0, r"\b(?P<s>CLOJARS_[a-z0-9]{60})\b"),
    rule!("nuget-config-password", "nuget_password", 0.85, ["password"], 0.0, r#"(?i)<add\s+key=["'](?:ClearText)?Password["']\s+value=["'](?P<s>[^"']{4,})["']"#, Loose),
    rule!("dockerhub-pat", "dockerhub_token", 0.95, [], 3.0, r"\b(?P<s>dckr_pat_[A-Za-z0-9_-]{27})"),
    rule!("docker-config-auth", "docker_auth", 0.85, ["auths"], 3.0, r#""auth"\s*:\s*"(?P<s>[A-Za-z0-9+/=]{16,})""#, Loose),
    rule!("artifactory-api-key", "artifactory_key", 0.9, [], 3.5, r"\b(?P<s>AKCp[A-Za-z0-9]{69})\b"),
    rule!("artifactory-reference-token", "artifactory_key", 0.85, [], 3.5, r"\b(?P<s>cmVmd[A-Za-z0-9]{59})\b"),
    rule!("heroku-api-key", "heroku_key", 0.85, ["heroku"], 3.0, r#"(?i)(?:\b|_)heroku(?:\b|[_.-]|(?-i:[A-Z]))[\w.-]{0,25}["']?\s*(?:[:?+]{0,3}=>?|:)\s*["']?(?P<s>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b"#),
    rule!("heroku-api-key-v2", "heroku_key", 0.95, [], 3.0, r"\b(?P<s>HRKU-AA[0-9A-Za-z_-]{58})"),
    rule!("digitalocean-pat", "digitalocean_token", 0.95, [], 3.0, r"\b(?P<s>dop_v1_[a-f0-9]{64})\b"),
    rule!("digitalocean-oauth", "digitalocean_token", 0.95, [], 3.0, r"\b(?P<s>doo_v1_[a-f0-9]{64})\b"),
    rule!("digitalocean-refresh", "digitalocean_token", 0.95, [], 3.0, r"\b(?P<s>dor_v1_[a-f0-9]{64})\b"),
    rule!("shopify-access-token", "shopify_token", 0.95, [], 3.0, r"\b(?P<s>shpat_[a-fA-F0-9]{32})\b"),
    rule!("shopify-custom-app", "shopify_token", 0.95, [], 3.0, r"\b(?P<s>shpca_[a-fA-F0-9]{32})\b"),
    rule!("shopify-private-app", "shopify_token", 0.95, [], 3.0, r"\b(?P<s>shppa_[a-fA-F0-9]{32})\b"),
    rule!("shopify-shared-secret", "shopify_token", 0.95, [], 3.0, r"\b(?P<s>shpss_[a-fA-F0-9]{32})\b"),
    rule!("datadog-api-key", "datadog_key", 0.8, ["datadog", "dd_api", "dd_app", "dd-api"], 3.0, r#"(?i)(?:\b|_)(?:datadog|dd)(?:\b|[_.-]|(?-i:[A-Z]))[\w.-]{0,20}(?:api|app)[\w.-]{0,10}key[\w.-]{0,5}["']?\s*(?:[:?+]{0,3}=>?|:)\s*["']?(?P<s>[a-f0-9]{40}|[a-f0-9]{32})\b"#),
    rule!("newrelic-user-key", "newrelic_key", 0.95, [], 3.0, r"\b(?P<s>NRAK-[A-Z0-9]{27})\b"),
    rule!("newrelic-insert-key", "newrelic_key", 0.95, [], 3.0, r"\b(?P<s>NRII-[A-Za-z0-9_-]{32})"),
    rule!("newrelic-browser-key", "newrelic_key", 0.9, [], 3.0, r"\b(?P<s>NRJS-[a-f0-9]{19})\b"),
    rule!("newrelic-license-key", "newrelic_key", 0.9, [], 3.0, r"\b(?P<s>[a-f0-9]{36}NRAL)\b"),
    rule!("sentry-dsn", "sentry_dsn", 0.85, ["sentry"], 0.0, r"https?://(?P<s>[0-9a-f]{32})(?::[0-9a-f]{32})?@[A-Za-z0-9.-]*sentry[A-Za-z0-9.-]*/\d+"),
    rule!("sentry-org-token", "sentry_token", 0.95, [], 3.5, r"\b(?P<s>sntrys_eyJ[A-Za-z0-9+/=_-]{60,})"),
    rule!("sentry-user-token", "sentry_token", 0.95, [], 3.0, r"\b(?P<s>sntryu_[a-f0-9]{64})\b"),
    rule!("databricks-token", "databricks_token", 0.9, [], 3.0, r"\b(?P<s>dapi[a-f0-9]{32}(?:-\d)?)\b"),
    rule!("vault-service-token", "vault_token", 0.9, [], 3.5, r"\b(?P<s>hvs\.[A-Za-z0-9_-]{90,120})"),
    rule!("vault-batch-token", "vault_token", 0.9, [], 3.5, r"\b(?P<s>hvb\.[A-Za-z0-9_-]{138,300})"),
    rule!("vault-legacy-token", "vault_token", 0.8, ["vault"], 3.5, r#"(?i)(?:\b|_)vault(?:\b|[_.-]|(?-i:[A-Z]))[\w.-]{0,20}["']?\s*(?:[:?+]{0,3}=>?|:)\s*["']?(?P<s>s\.[A-Za-z0-9]{24})\b"#),
    rule!("terraform-cloud-token", "terraform_token", 0.95, [], 3.5, r"\b(?P<s>[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,70})"),
    rule!("pulumi-token", "pulumi_token", 0.95, [], 3.0, r"(?:^|[^A-Za-z0-9._/-])(?P<s>pul-[a-f0-9]{40})\b"),
    rule!("doppler-token", "doppler_token", 0.95, [], 3.5, r"\b(?P<s>dp\.pt\.[A-Za-z0-9]{43})\b"),
    rule!("cloudflare-origin-ca-key", "cloudflare_key", 0.95, [], 3.0, r"\b(?P<s>v1\.0-[a-f0-9]{24}-[a-f0-9]{146})\b"),
    rule!("cloudflare-api-token", "cloudflare_key", 0.8, ["cloudflare", "cf_api"], 3.5, r#"(?i)(?:\b|_)(?:cloudflare|cf_api)(?:\b|[_.-]|(?-i:[A-Z]))[\w.-]{0,20}(?:token|key)[\w.-]{0,5}["']?\s*(?:[:?+]{0,3}=>?|:)\s*["']?(?P<s>[A-Za-z0-9_-]{40})\b"#),
    rule!("grafana-cloud-token", "grafana_token", 0.9, [], 3.5, r"\b(?P<s>glc_[A-Za-z0-9+/]{32,400}={0,2})"),
    rule!("grafana-service-account", "grafana_token", 0.95, [], 3.0, r"\b(?P<s>glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8})\b"),
    rule!("dynatrace-token", "dynatrace_token", 0.95, [], 3.0, r"\b(?P<s>dt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64})\b"),
    rule!("flyio-token", "flyio_token", 0.9, [], 3.5, r"(?P<s>\bfo1_[A-Za-z0-9_-]{43}|\bfm[12][ar]?_[A-Za-z0-9+/]{100,}={0,3})"),
    rule!("planetscale-token", "planetscale_token", 0.95, [], 3.0, r"\b(?P<s>pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_.-]{32,64})"),
    rule!("supabase-token", "supabase_token", 0.95, [], 3.0, r"(?:^|[^A-Za-z0-9._/-])(?P<s>sbp_[a-f0-9]{40})\b"),
    rule!("scalingo-token", "scalingo_token", 0.95, [], 3.0, r"\b(?P<s>tk-us-[A-Za-z0-9_-]{48})"),
    rule!("openshift-user-token", "openshift_token", 0.9, [], 3.5, r"\b(?P<s>sha256~[A-Za-z0-9_-]{43})(?:[^A-Za-z0-9_-]|$)"),
    rule!("octopus-deploy-key", "octopus_key", 0.9, [], 3.0, r"(?:^|[^A-Za-z0-9._/-])(?P<s>API-[A-Z0-9]{26})\b"),
    rule!("infracost-token", "infracost_token", 0.95, [], 3.0, r"(?:^|[^A-Za-z0-9._/-])(?P<s>ico-[A-Za-z0-9]{32})\b"),
    rule!("prefect-token", "prefect_token", 0.95, [], 3.0, r"(?:^|[^A-Za-z0-9._/-])(?P<s>pnu_[A-Za-z0-9]{36})\b"),
    rule!("readme-token", "readme_token", 0.95, [], 3.0, r"\b(?P<s>rdme_[a-z0-9]{70})\b"),
    rule!("clickhouse-cloud-secret", "clickhouse_key", 0.9, [], 3.5, r"\b(?P<s>4b1d[A-Za-z0-9]{38})\b"),
    rule!("snyk-token", "snyk_token", 0.8, ["snyk"], 3.0, r#"(?i)(?:\b|_)snyk(?:\b|[_.-]|(?-i:[A-Z]))[\w.-]{0,25}["']?\s*(?:[:?+]{0,3}=>?|:)\s*["']?(?P<s>[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12})\b"#),
    rule!("sonar-token", "sonar_token", 0.9, [], 3.0, r"\b(?P<s>sq[upa]_[A-Za-z0-9]{40})\b"),
    rule!("sonar-keyword-token", "sonar_token", 0.8, ["sonar"], 3.0, r#"(?i)(?:\b|_)sonar(?:\b|[_.-]|(?-i:[A-Z]))[\w.-]{0,25}(?:token|login)[\w.-]{0,5}["']?\s*(?:[:?+]{0,3}=>?|:)\s*["']?(?P<s>(?:sq[upa]_)?[A-Za-z0-9]{40})\b"#),
    rule!("sourcegraph-token", "sourcegraph_token", 0.9, [], 3.0, r"\b(?P<s>sgp_(?:[a-fA-F0-9]{16}_|local_)?[a-fA-F0-9]{40}|sgph_[a-fA-F0-9]{16}_[a-fA-F0-9]{40})\b"),
    rule!("sourcegraph-keyword-token", "sourcegraph_token", 0.8, ["sourcegraph"], 3.0, r#"(?i)(?:\b|_)sourcegraph(?:\b|[_.-]|(?-i:[A-Z]))[\w.-]{0,20}["']?\s*(?:[:?+]{0,3}=>?|:)\s*["']?(?P<s>[a-fA-F0-9]{40})\b"#),
    rule!("sumologic-access-id", "sumologic_key", 0.8, ["sumo"], 3.0, r#"(?i)(?:\b|_)sumo(?:logic)?(?:\b|[_.-]|(?-i:[A-Z]))[\w.-]{0,25}["']?\s*(?:[:?+]{0,3}=>?|:)\s*["']?(?P<s>su[A-Za-z0-9]{12})\b"#),
    rule!("sumologic-access-key", "sumologic_key", 0.8, ["sumo"], 3.5, r#"(?i)(?:\b|_)sumo(?:logic)?(?:\b|[_.-]|(?-i:[A-Z]))[\w.-]{0,25}["']?\s*(?:[:?+]{0,3}=>?|:)\s*["']?(?P<s>[A-Za-z0-9]{64})\b"#),
    rule!("sidekiq-secret", "sidekiq_secret", 0.9, ["contribsys"], 0.0, r#"(?i)BUNDLE_(?:ENTERPRISE|GEMS)__CONTRIBSYS__COM["']?\s*(?:[:?+]{0,3}=>?|:)\s*["']?(?P<s>[a-f0-9]{8}:[a-f0-9]{8})\b"#),
    rule!("maxmind-license-key", "maxmind_key", 0.95, [], 3.0, r"\b(?P<s>[A-Za-z0-9]{6}_[A-Za-z0-9]{29}_mmk)\b"),
    rule!("hubspot-api-key", "hubspot_key", 0.8, ["hubspot", "hapikey"], 3.0, r#"(?i)(?:\b|_)(?:hubspot|hapikey)(?:\b|[_.-]|(?-i:[A-Z]))[\w.-]{0,25}["']?\s*(?:[:?+]{0,3}=>?|:)\s*["']?(?P<s>[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12})\b"#),
    rule!("intra42-secret", "intra42_secret", 0.95, [], 3.0, r"\b(?P<s>s-s4t2(?:ud|af)-[a-f0-9]{64})\b"),
    rule!("okta-token", "okta_token", 0.8, ["okta"], 3.5, r#"(?i)(?:\b|_)okta(?:\b|[_.-]|(?-i:[A-Z]))[\w.-]{0,25}["']?\s*(?:[:?+]{0,3}=>?|:)\s*["']?(?P<s>00[A-Za-z0-9_-]{40})\b"#),
    rule!("meraki-api-key", "meraki_key", 0.8, ["meraki"], 3.0, r#"(?i)(?:\b|_)meraki(?:\b|[_.-]|(?-i:[A-Z]))[\w.-]{0,25}["']?\s*(?:[:?+]{0,3}=>?|:)\s*["']?(?P<s>(?-i:[a-f0-9]{40}))\b"#),
    rule!("etsy-token", "etsy_token", 0.8, ["etsy"], 3.0, r#"(?i)(?:\b|_)etsy(?:\b|[_.-]|(?-i:[A-Z]))[\w.-]{0,25}["']?\s*(?:[:?+]{0,3}=>?|:)\s*["']?(?P<s>[a-z0-9]{24})\b"#),
    // ---- Other SaaS
    rule!("age-secret-key", "age_key", 0.95, [], 0.0, r"\b(?P<s>AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58})\b"),
    rule!("alibaba-access-key", "alibaba_key", 0.85, [], 3.0, r"\b(?P<s>LTAI[A-Za-z0-9]{12,20})\b"),
    rule!("adobe-client-secret", "adobe_secret", 0.9, [], 3.0, r"\b(?P<s>p8e-[A-Za-z0-9]{32})\b"),
    rule!("airtable-pat", "airtable_token", 0.95, [], 3.0, r"\b(?P<s>pat[A-Za-z0-9]{14}\.[a-f0-9]{64})\b"),
    rule!("contentful-pat", "contentful_token", 0.95, [], 3.0, r"\b(?P<s>CFPAT-[A-Za-z0-9_-]{43})"),
    rule!("frameio-token", "frameio_token", 0.95, [], 3.0, r"\b(?P<s>fio-u-[A-Za-z0-9_=-]{64})"),
    rule!("figma-pat", "figma_token", 0.9, [], 3.0, r"\b(?P<s>figd_[A-Za-z0-9_-]{40})"),
    rule!("linear-api-key", "linear_key", 0.95, [], 3.0, r"\b(?P<s>lin_api_[A-Za-z0-9]{40})\b"),
    rule!("notion-secret", "notion_token", 0.9, [], 3.5, r"\b(?P<s>secret_[A-Za-z0-9]{43})\b"),
    rule!("notion-token", "notion_token", 0.95, [], 3.5, r"\b(?P<s>ntn_[0-9]{11}[A-Za-z0-9]{35})\b"),
    rule!("postman-api-key", "postman_key", 0.95, [], 3.0, r"\b(?P<s>PMAK-[a-f0-9]{24}-[a-f0-9]{34})\b"),
    rule!("typeform-token", "typeform_token", 0.95, [], 3.0, r"\b(?P<s>tfp_[A-Za-z0-9_.=-]{59})"),
    rule!("mapbox-secret-token", "mapbox_token", 0.95, [], 3.5, r"\b(?P<s>sk\.eyJ[A-Za-z0-9_-]{50,}\.[A-Za-z0-9_-]{20,})"),
    rule!("facebook-access-token", "facebook_token", 0.9, [], 3.5, r"\b(?P<s>EAA[BCDGIMQ][A-Za-z0-9]{80,})\b"),
    rule!("facebook-app-token", "facebook_token", 0.9, [], 3.0, r"\b(?P<s>\d{15,16}(?:\||%7C)[A-Za-z0-9_-]{27})(?:[^A-Za-z0-9_-]|$)"),
    rule!("facebook-secret", "facebook_secret", 0.8, ["facebook"], 3.0, r#"(?i)(?:\b|_)facebook(?:\b|[_.-]|(?-i:[A-Z]))[\w.-]{0,25}(?:secret|key|token)[\w.-]{0,5}["']?\s*(?:[:?+]{0,3}=>?|:)\s*["']?(?P<s>[a-f0-9]{32})\b"#),
    rule!("twitter-bearer-token", "twitter_token", 0.9, [], 3.5, r"\bAAAAAAAAAAAAAAAAAAAAA(?P<s>[A-Za-z0-9%]{30,})"),
    rule!("dropbox-short-lived", "dropbox_token", 0.9, [], 3.5, r"\b(?P<s>sl\.[A-Za-z0-9_-]{130,})"),
    rule!("launchdarkly-key", "launchdarkly_key", 0.9, [], 3.0, r"\b(?P<s>(?:api|sdk|mob)-[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12})\b"),
    rule!("onepassword-service-token", "onepassword_token", 0.95, [], 3.5, r"\b(?P<s>ops_eyJ[A-Za-z0-9+/=_-]{100,})"),
    rule!("onepassword-secret-key", "onepassword_key", 0.9, [], 3.0, r"\b(?P<s>A3-[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5})\b"),
    rule!("kubernetes-secret-data", "kubernetes_secret", 0.8, ["secret"], 3.0, r"(?s)kind:\s*['\x22]?(?i:secret)['\x22]?\s*\n(?:.{0,400}?\n)?\s*(?:data|stringData):\s*\n(?:\s*#[^\n]*\n)*\s+[\w.-]+:\s*(?:[|>][-+]?\s*)?['\x22]?(?P<s>[A-Za-z0-9+/=_.-]{8,})", Loose),
    rule!("kubernetes-secret-data-first", "kubernetes_secret", 0.8, ["secret"], 3.0, r"(?s)(?:data|stringData):\s*\n(?:\s*#[^\n]*\n)*\s+[\w.-]+:\s*(?:[|>][-+]?\s*)?['\x22]?(?P<s>[A-Za-z0-9+/=_.-]{8,})['\x22]?\s*\n.{0,400}?kind:\s*['\x22]?(?i:secret)['\x22]?(?:\s|$)", Loose),
    // ---- Private keys
    rule!("private-key-rsa", "private_key", 0.99, ["private key"], 0.0, r"-----BEGIN RSA PRIVATE KEY-----(?:[A-Za-z0-9+/=\s\\:,._]|-[A-Za-z0-9]){16,}(?:-----END RSA PRIVATE KEY-----)?", Block),
    rule!("private-key-ec", "private_key", 0.99, ["private key"], 0.0, r"-----BEGIN EC PRIVATE KEY-----(?:[A-Za-z0-9+/=\s\\:,._]|-[A-Za-z0-9]){16,}(?:-----END EC PRIVATE KEY-----)?", Block),
    rule!("private-key-dsa", "private_key", 0.99, ["private key"], 0.0, r"-----BEGIN DSA PRIVATE KEY-----(?:[A-Za-z0-9+/=\s\\:,._]|-[A-Za-z0-9]){16,}(?:-----END DSA PRIVATE KEY-----)?", Block),
    rule!("private-key-openssh", "private_key", 0.99, ["private key"], 0.0, r"-----BEGIN OPENSSH PRIVATE KEY-----(?:[A-Za-z0-9+/=\s\\:,._]|-[A-Za-z0-9]){16,}(?:-----END OPENSSH PRIVATE KEY-----)?", Block),
    rule!("private-key-pkcs8", "private_key", 0.99, ["private key"], 0.0, r"-----BEGIN PRIVATE KEY-----(?:[A-Za-z0-9+/=\s\\:,._]|-[A-Za-z0-9]){16,}(?:-----END PRIVATE KEY-----)?", Block),
    rule!("private-key-encrypted", "private_key", 0.99, ["private key"], 0.0, r"-----BEGIN ENCRYPTED PRIVATE KEY-----(?:[A-Za-z0-9+/=\s\\:,._]|-[A-Za-z0-9]){16,}(?:-----END ENCRYPTED PRIVATE KEY-----)?", Block),
    rule!("private-key-pgp", "private_key", 0.99, ["private key"], 0.0, r"-----BEGIN PGP PRIVATE KEY BLOCK-----(?:[A-Za-z0-9+/=\s\\:,._]|-[A-Za-z0-9]){16,}(?:-----END PGP PRIVATE KEY BLOCK-----)?", Block),
    // A key header alone (the body cut off, on the next line or in the next
    // message) still says key material is being written out; a header
    // inside a code string (`"...-----\\n" + key`) is not at a line end.
    rule!("private-key-header", "private_key", 0.9, ["private key"], 0.0, r"(?m)-----BEGIN (?:(?:RSA|EC|DSA|OPENSSH|ENCRYPTED|PGP) )?PRIVATE KEY(?: BLOCK)?-----[ \t]*\r?$", KeyHeader),
    rule!("private-key-putty", "private_key", 0.95, ["putty-user-key-file"], 0.0, r"PuTTY-User-Key-File-[23]: [\w-]+\s+Encryption: [\w-]+\s+Comment: [^\n]*\s+Public-Lines: \d+(?:\s+[A-Za-z0-9+/=]+)+\s+Private-Lines: \d+(?:\s+[A-Za-z0-9+/=]{8,})+", Block),
    // ---- Credentials in URLs and connection strings
    rule!("postgres-url-password", "connection_string_password", 0.9, ["postgres"], 0.0, r#"\bpostgres(?:ql)?://[^\s:/@'"]+:(?P<s>[^\s@/'"]{3,})@[^\s/'"]+"#, Loose),
    rule!("mysql-url-password", "connection_string_password", 0.9, ["mysql"], 0.0, r#"\bmysql(?:x)?://[^\s:/@'"]+:(?P<s>[^\s@/'"]{3,})@[^\s/'"]+"#, Loose),
    rule!("mongodb-url-password", "connection_string_password", 0.9, ["mongodb"], 0.0, r#"\bmongodb(?:\+srv)?://[^\s:/@'"]+:(?P<s>[^\s@/'"]{3,})@[^\s/'"]+"#, Loose),
    rule!("redis-url-password", "connection_string_password", 0.9, ["redis"], 0.0, r#"\brediss?://[^\s:/@'"]*:(?P<s>[^\s@/'"]{3,})@[^\s/'"]+"#, Loose),
    rule!("amqp-url-password", "connection_string_password", 0.9, ["amqp"], 0.0, r#"\bamqps?://[^\s:/@'"]+:(?P<s>[^\s@/'"]{3,})@[^\s/'"]+"#, Loose),
    rule!("mssql-url-password", "connection_string_password", 0.9, ["sqlserver", "mssql"], 0.0, r#"\b(?:sqlserver|mssql)://[^\s:/@'"]+:(?P<s>[^\s@/'"]{3,})@[^\s/'"]+"#, Loose),
    rule!("url-basic-auth", "url_password", 0.8, ["://"], 0.0, r#"\b(?:https?|ftps?|sftp|smtps?|imaps?|ldaps?|git|ssh|svn)://[A-Za-z0-9._%+-]+:(?P<s>[^\s@/'"]{3,})@[A-Za-z0-9.-]+"#, Loose),
    rule!("ado-connection-password", "connection_string_password", 0.85, ["password", "pwd"], 0.0, r#"(?i)(?:server|data source|host)=[^;\n]{1,100};[^\n]{0,200}?\b(?:password|pwd)=(?P<s>[^;'"\s]{3,})"#, Loose),
    rule!("jdbc-password", "connection_string_password", 0.85, ["jdbc"], 0.0, r#"(?i)jdbc:[a-z0-9]+:[^\s'"]{0,200}?[?;&]password=(?P<s>[^;&'"\s]{3,})"#, Loose),
    // ---- HTTP auth, tokens in command lines
    rule!("http-basic-auth-header", "http_auth_header", 0.85, ["authorization"], 2.5, r"(?i)authorization\x22?\s*:\s*\x22?basic\s+(?P<s>[A-Za-z0-9+/=]{8,})", Loose),
    rule!("http-bearer-header", "http_auth_header", 0.85, ["authorization", "bearer"], 3.0, r"(?i)(?:authorization\x22?\s*:\s*\x22?)?bearer\s+(?P<s>[A-Za-z0-9._~+/=-]{16,})", Loose),
    rule!("http-auth-header-raw", "http_auth_header", 0.75, ["authorization"], 3.0, r"(?i)authorization\x22?\s*:\s*\x22?(?:(?:token|api-?token|api-?key|key|sso-key|digest)\s+)?(?P<s>[A-Za-z0-9._~+/=@!*-]{16,})", Loose),
    rule!("curl-token-header", "http_auth_header", 0.8, ["-h", "--header"], 2.5, r#"(?i)(?:-H|--header)\s+["'](?:x-)?(?:api[_-]?token|api[_-]?key|auth[_-]?token|access[_-]?token|private[_-]?token|token|apikey)\s*:\s*(?P<s>[A-Za-z0-9._~+/=-]{8,})["']"#, Loose),
    rule!("curl-user-password", "curl_credentials", 0.85, ["curl"], 0.0, r#"(?i)\bcurl\b(?:[^\n]|\\\r?\n){0,400}?\s(?:-u|--user)\s*(?P<s>['"]?[^\s'":]*['"]?:['"]?[^\s'"]*['"]?)"#, UserPass),
    rule!("x-api-key-header", "http_auth_header", 0.8, ["api-key", "api_key", "apikey"], 3.5, r"(?i)x-api-key\x22?\s*:\s*\x22?(?P<s>[A-Za-z0-9._~+/=-]{20,})", Loose),
    // ---- JWT
    rule!("jwt", "jwt", 0.85, ["eyj"], 0.0, r"\b(?P<s>eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{0,600})", Jwt),
    rule!("jwt-base64", "jwt", 0.8, ["zxlk"], 0.0, r"\b(?P<s>ZXlK[A-Za-z0-9+/]{40,}={0,2})", Jwt),
];
