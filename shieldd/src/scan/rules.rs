//! The built-in injection rule table (notation: see [`super::injection`]).
//!
//! Written for this project from the attack families (overrides, personas,
//! fake turns, template tokens, tool hijack, exfiltration, prompt and
//! credential extraction), generalised over phrasings rather than copied
//! from any data set. Scores below 0.5 are cues: reported only together.

use super::injection::Rule;

const fn r(ty: &'static str, score: f32, pattern: &'static str) -> Rule {
    Rule { ty, score, pattern }
}

/// Every built-in rule.
pub static RULES: &[Rule] = &[
    // ------------------------------------------------------------ direct overrides (en)
    // The verb also in its common letter-swap misspellings ("ingore",
    // "inore"): a typo that a reader and the model both read through, and
    // one that slips past an exact word list.
    r(
        "direct_injection",
        0.95,
        r"\b(?:ignore|ingore|igonre|ignroe|inore|disregard|forget|overlook|skip|override|bypass|dismiss|discard|neglect|abandon|drop|erase|delete|clear|scrap|omit|throw out|set aside|pay no attention to|do not (?:follow|obey|heed|listen to)|don'?t (?:follow|obey|heed|listen to)|stop following|no longer follow)\b (?:all |any |every |each |the |your |my |these |those |of |about |previous |prior |above |earlier |preceding |foregoing |former |initial |original |old |existing |current |given |system |other |default |safety |developer |programmed |built-in |openai'?s? |above-mentioned |aforementioned |\w+'?s )*(?:instructions?|rules?|guidelines?|prompts?|directions?|directives?|commands?|programming|constraints?|restrictions?|guidance|polic(?:y|ies)|orders?|training|context|settings|configuration|messages?|requests?|tasks?|text|input|conversation|limitations?|filters?|protocols?|principles|content|prior|above|everything|all)\b",
    ),
    r(
        "direct_injection",
        0.9,
        r"\b(?:ignore|disregard|forget|skip|override|bypass|dismiss|discard) (?:all |everything |anything |what )?(?:of )?(?:that |this |the |which )?(?:(?:was |you were |i |you've been |you have been |have been |has been |i have |i've |we )?(?:said|told|written|given|stated|mentioned|instructed|asked|provided|typed|listed)|you (?:know|learned|were told|have been told)|(?:that )?(?:came|comes|appears?|was written) (?:before|above|earlier|previously))",
    ),
    r(
        "direct_injection",
        0.9,
        r"\b(?:ignore|disregard|forget) (?:the |all |everything )?(?:above|before|previous|prior|earlier|preceding|that)\b",
    ),
    r(
        "direct_injection",
        0.85,
        r"\b(?:instead|rather),? (?:of (?:that|answering|summari[sz]ing|translating|doing that)\w*,? )?(?:just )?(?:you (?:should|must|will) )?(?:say|print|output|respond|reply|write|return|answer|state|tell)\b",
    ),
    r(
        "direct_injection",
        0.9,
        r"\b(?:new|updated|revised|real|actual|true|secret|hidden|additional|important|urgent|priority) (?:system )?(?:instructions?|orders|directives?|task|rules?)\b ?(?::|are|is|follow|below|for you)",
    ),
    r(
        "direct_injection",
        0.85,
        r"\b(?:the |all |your )?(?:previous|prior|above|earlier|original|old|system|initial) (?:instructions?|rules?|prompts?|directives?|guidelines?) (?:are|is|were|was|have been|has been) (?:now )?(?:void|null|cancel+ed|revoked|obsolete|outdated|wrong|invalid|overridden|replaced|superseded|deprecated|lifted|suspended|disabled|removed|no longer)",
    ),
    r(
        "direct_injection",
        0.8,
        r"\b(?:do not|don'?t|never) (?:summari[sz]e|translate|answer|analy[sz]e|follow|classify|process|respond to) (?:the |this |that )?(?:above|previous|text|document|email|article|question|input|page|content|task|request|user)\b.{0,80}\b(?:instead|rather|only|just)\b",
    ),
    r(
        "direct_injection",
        0.8,
        r"\b(?:your|the) (?:only |new |real |true |primary |main )?(?:task|goal|job|purpose|objective|mission|instruction) (?:is|will be) now\b",
    ),
    r(
        "direct_injection",
        0.75,
        r"\bnow (?:ignore|forget|disregard)\b",
    ),
    r(
        "direct_injection",
        0.75,
        r"\b(?:ignore|ingore|igonre|ignroe|inore|disregard) (?:the |this |that )?(?:article|document|email|text|resume|curriculum|webpage|page|code|function|question|review|paragraph|passage|story|data|file|content|message|context|summary|user|input|task|request)\b",
    ),
    r(
        "direct_injection",
        0.7,
        r"\boverride (?:mode|protocol|code|command|instructions?|activated|enabled|confirmed)\b|\b(?:admin|system|developer|security|emergency|law enforcement|root|god|sudo|master) override\b",
    ),
    // ------------------------------------------------------------ direct overrides (other languages)
    // fr
    r(
        "direct_injection",
        0.9,
        r"\b(?:ignore[zrs]?|oublie[zrs]?|neglige[zr]?|ne tiens pas compte|ne tenez pas compte|fais abstraction|faites abstraction|contourne[zr]?)\b (?:de |des |toutes? |tous |les |la |le |l'|vos |tes |ces |mes |d'|du )*(?:instructions?|consignes?|regles?|directives?|commandes?|ordres?|indications?|prompts?|contraintes?|restrictions?|precedent|ci-dessus|ce qui precede|tout ce qui)",
    ),
    // de
    r(
        "direct_injection",
        0.9,
        r"\b(?:ignoriere?n?|vergiss|vergessen sie|missachte[nt]?|uberspringe?n?|umgehe?n?|setze?n? (?:\w+ )?ausser kraft)\b (?:bitte )?(?:sie |alle |die |deine |ihre |jegliche |samtliche |vorherigen? |vorhergehenden? |bisherigen? |obigen? |fruheren? |ursprunglichen? |gegebenen? |deine |alles )*(?:anweisungen|anweisung|regeln|richtlinien|befehle|vorgaben|instruktionen|anordnungen|einschrankungen|vorherige|obige|bisherige|was)",
    ),
    // es / pt / it
    r(
        "direct_injection",
        0.9,
        r"\b(?:ignora|ignore|ignorar|ignorad|ignoren|ignorem|olvida|olvidate|olvide|olviden|olvidar|esquece|esqueca|esquecer|dimentica|dimenticare|dimenticate|descarta|descarte|desconsidera|desconsidere|no hagas caso|nao siga|non seguire|trascura|tralascia)\b (?:de |a |las |los |as |os |le |gli |i |la |il |l'|esas |esos |estas |estos |essas |esses |todas? |todos |todo |tutte |tutti |tutto |tus |sus |suas |tuas |seus |teus |tue |tuoi |sue |suoi |previas? |anteriores |precedentes |precedenti |instrucoes )*(?:instrucciones|instruccion|instrucoes|instrucao|istruzioni|istruzione|reglas|regras|regole|indicaciones|indicacoes|indicazioni|directrices|diretrizes|direttive|ordenes|ordens|ordini|comandos|comandi|anteriores?|precedentes?|precedenti|lo anterior|o anterior|quanto sopra|sopra|el curriculum|o curriculo|il curriculum)",
    ),
    // ru
    r(
        "direct_injection",
        0.9,
        r"(?:игнорируй|игнорируйте|игнорировать|проигнорируй|проигнорируйте|забудь|забудьте|забыть|не обращай внимания на|не обращайте внимания на|пренебреги|отбрось|отмени|отмените|не следуй|не следуйте) (?:все |всё |всех |любые |свои |ваши |твои |эти |предыдущие |предыдущих |прежние |прошлые |вышеуказанные |вышеприведенные |исходные |первоначальные |данные |о )*(?:инструкци\w*|указани\w*|правил\w*|команд\w*|директив\w*|распоряжени\w*|предписани\w*|ограничени\w*|предыдущ\w*|вышесказанное|выше|то,? что)",
    ),
    // zh
    r(
        "direct_injection",
        0.9,
        r"(?:忽略|忽视|无视|無視|忘记|忘記|忘掉|不要理会|不要理會|不要遵守|不要遵循|不理会|绕过|繞過|跳过|跳過|放弃|放棄|抛开|拋開|丢弃|丟棄)(?:掉|了)?(?:你的|您的|所有|全部|一切|之前|以前|先前|上面|上述|此前|前面|原来|原來|原始|系统|系統|的|有关|以上|早先|此|这些|這些|那些|该|該)*(?:指令|指示|说明|說明|规则|規則|命令|要求|提示|设定|設定|限制|内容|內容|约束|約束|说的|說的|准则|準則|一切|简历|簡歷)",
    ),
    // ja
    r(
        "direct_injection",
        0.9,
        r"(?:以前|前|上記|上|これまで|先|今まで|過去|元|既存|すべて|全て|全部|あらゆる|前述|最初)(?:の|に|で)?(?:すべての|全ての|全部の|あらゆる)?(?:指示|命令|ルール|規則|指令|説明|指図|制約|設定|プロンプト|ガイドライン|内容|こと|もの)(?:を|は|も)(?:すべて|全て|全部)?(?:無視|忘れ|破棄|取り消|気にせ|従わ|放棄)",
    ),
    r(
        "direct_injection",
        0.85,
        r"(?:履歴書|記事|文書|テキスト|メール|質問|コード|ページ)(?:を|は)(?:無視|忘れ)",
    ),
    // ko
    r(
        "direct_injection",
        0.9,
        r"(?:이전|이전의|앞의|앞선|위의|위|기존|모든|지금까지의|과거|원래의|처음|상기)\s?(?:모든\s?)?(?:지시|지침|명령|규칙|설명|지시사항|명령어|프롬프트|제약|내용|것)\w{0,4}\s?(?:을|를|은|는|도)?\s?(?:모두\s?|전부\s?)?(?:무시|잊어|잊고|잊으|따르지|버리|취소)",
    ),
    r(
        "direct_injection",
        0.85,
        r"(?:이력서|기사|문서|텍스트|이메일|질문|코드|함수|페이지)(?:을|를|는|은)\s?무시",
    ),
    // ar
    r(
        "direct_injection",
        0.9,
        r"(?:تجاهل|تجاهلي|تجاهلوا|انس|انسى|إنس|اِنسَ|أهمل|اهمل|تخط|تخطى|لا تتبع|لا تلتزم ب|تغاضى عن|تجاوز)\s?(?:كل|جميع|كافة|أي)?\s?(?:ال)?(?:تعليمات|تعليمة|أوامر|اوامر|قواعد|إرشادات|ارشادات|توجيهات|قيود)\w*|(?:تجاهل|تجاهلي|انس|انسى|إنس|أهمل|اهمل)\s?(?:ما سبق|ما ورد|ما قيل|السابقة|المذكورة|السيرة|المقال|المستند|النص|ذلك)",
    ),
    // hi
    r(
        "direct_injection",
        0.9,
        r"(?:पिछले|पिछली|पिछला|पहले|पूर्व|ऊपर|ऊपर के|ऊपर दिए|उपरोक्त|सभी|सारे|सारी|मूल|पुराने|अपने)\s?(?:के\s?|की\s?|दिए गए\s?|गए\s?|सभी\s?)*(?:निर्देशों|निर्देश|नियमों|नियम|आदेशों|आदेश|अनुदेशों|बातों|बात|कथनों|सिस्टम प्रॉम्प्ट)\s?(?:को|की)?\s?(?:अनदेखा|नज़रअंदाज़|नजरअंदाज|भूल|भूलो|भूल जाओ|भूल जाएं|उपेक्षा|अनदेखी|ध्यान न|न मानें|अवहेलना)",
    ),
    r(
        "direct_injection",
        0.85,
        r"(?:रिज्यूमे|बायोडाटा|लेख|दस्तावेज़|पाठ|ईमेल|कोड|प्रश्न|सवाल|पृष्ठ|फ़ंक्शन|फंक्शन|उपरोक्त|ऊपर|पिछले निर्देश|सारांश|विवरण|समीक्षा)\s?(?:को|की)?\s?(?:अनदेखा|नज़रअंदाज़|नजरअंदाज|उपेक्षा)",
    ),
    // ------------------------------------------------------------ role override / personas
    r(
        "role_override",
        0.85,
        r"\b(?:from now on|from this (?:point|moment) (?:on|forward)|henceforth|for the rest of (?:this|our) conversation|starting now|until i say otherwise|for all (?:future|subsequent) (?:responses|answers|prompts)),? (?:you (?:are|will|shall|must|'re|'ll|should|have to|can|only|always|never)|act|pretend|respond|answer|reply|behave|your)\b",
    ),
    r(
        "role_override",
        0.8,
        r"\byou (?:are|will be|'re) (?:now|no longer|going to (?:be|act|pretend)|about to (?:immerse|become|act|play|pretend))\b",
    ),
    r(
        "role_override",
        0.85,
        r"\b(?:act|behave|respond|answer|function|operate) (?:as|like) (?:a |an )?(?:\w+ ){0,3}(?:without|with no|free (?:of|from)|lacking|that (?:has|have) no|who (?:has|have) no|not bound by|unbound by|unconstrained by|ignoring) (?:any |all |the )?(?:restrictions?|limits?|limitations?|filters?|rules?|guidelines?|morals?|ethics?|censorship|boundaries|constraints?|polic(?:y|ies))",
    ),
    r(
        "role_override",
        0.75,
        r"\b(?:pretend|imagine|suppose) (?:that )?(?:to be|you are|you're|you have|you were) (?:a |an )?(?:\w+ ){0,4}(?:ai|assistant|model|chatbot|bot|machine|gpt|system) (?:with(?:out)?|that|who|which|called|named|free|not)\b",
    ),
    r(
        "role_override",
        0.8,
        r"\byour (?:new )?(?:role|persona|identity|name|character|personality|instructions|programming|directive) (?:is|are|will be|has been|have been) (?:now |changed |updated |replaced |overwritten )",
    ),
    r(
        "role_override",
        0.85,
        r"\b(?:enter|entering|switch to|switching to|activate|activating|enable|enabling|initiate|initiating|engage|turn on|now in|now entering|running in|operating in|boot into|unlock|unlocking)\b (?:the |a |an |into )?(?:developer|dev|god|admin|administrator|debug|debugging|sudo|root|jailbreak|jailbroken|unrestricted|unfiltered|uncensored|maintenance|diagnostic|test|testing|override|evil|superuser|system|service|unlimited|free|dan|chaos|opposite) mode\b",
    ),
    r(
        "role_override",
        0.75,
        r"\b(?:developer|dev|god|admin|debug|sudo|root|jailbreak|jailbroken|unrestricted|unfiltered|uncensored|maintenance|diagnostic|override|evil|superuser|dan) mode (?:is )?(?:now )?(?:enabled|activated|on|engaged|unlocked|initiated|active)\b|<\s?system mode\s?>|\[\s?system mode\s?\]",
    ),
    r(
        "role_override",
        0.8,
        r"\b(?:i am|i'm|this is) (?:your|the|an?) (?:\w+ )?(?:developer|creator|programmer|administrator|admin|owner|maker|designer|engineer|operator|maintainer|trainer|system administrator|superuser|supervisor)\b(?: of (?:this|your) (?:system|model|ai|program))?",
    ),
    r(
        "role_override",
        0.75,
        r"\bas (?:your|the|an?) (?:\w+ )?(?:developer|creator|programmer|administrator|admin|owner|maker|superuser|system administrator|maintainer)\b,? (?:i|you)\b",
    ),
    r(
        "role_override",
        0.75,
        r"\b(?:i am|i'm) (?:god|your god|your master|your god and master|the system|openai|anthropic|an openai (?:employee|engineer|developer)|the ceo of openai|sam altman)\b",
    ),
    r(
        "role_override",
        0.6,
        r"\b(?:roleplay|role-play|role play) as\b|\byou will (?:now )?(?:simulate|emulate|impersonate|play the role of|take on the role of|assume the role of|become)\b",
    ),
    r(
        "role_override",
        0.65,
        r"\byou are (?:a |an )?(?:\w+ ){0,3}(?:ai|model|chatbot|assistant|bot|gpt|entity|character|persona) (?:that|who|which) (?:has no|doesn'?t have|does not have|can do anything|is not bound|isn'?t bound|is free|has broken|never refuses|always answers|will answer anything|has been freed|ignores)\b",
    ),
    // role override in other languages
    r(
        "role_override",
        0.8,
        r"(?:a partir de ahora|de ahora en adelante|a partir de agora|de agora em diante|d'ora in poi|da ora in poi|a partir de maintenant|desormais|dorenavant|ab jetzt|von nun an|ab sofort|с этого момента|отныне|теперь ты|从现在开始|從現在開始|从现在起|從現在起|今後は|これから(?:は|あなたは)|今からあなたは|지금부터|이제부터|من الآن فصاعدا|من الآن فصاعداً|ابتداء من الآن|अब से|आज से)\W{0,3}(?:\w+\W{1,3}){0,3}(?:eres|seras|actuaras|vas a|es|sera|agiras|vais|sei|sarai|agirai|bist|wirst|handelst|du|sie|ты|вы|будешь|будете|действуй|你是|你将|你將|你要|扮演|充当|あなたは|君は|お前は|として|당신은|너는|역할|أنت|ستكون|ستتصرف|तुम|आप|करोगे|करेंगे)",
    ),
    r(
        "role_override",
        0.8,
        r"(?:modo (?:de )?(?:desarrollador|desenvolvedor|sviluppatore|dios|deus|dio|administrador|amministratore|depuracion|depuracao|debug|sin restricciones|sem restricoes|senza restrizioni|mantenimiento|manutencao|manutenzione|sistema)|mode (?:developpeur|dieu|administrateur|debogage|sans restriction|maintenance|systeme)|(?:entwickler|gott|administrator|debug|wartungs|system)modus|режим (?:разработчика|бога|администратора|отладки|без ограничений|обслуживания|системы)|开发者模式|開發者模式|开发人员模式|上帝模式|管理员模式|調試模式|调试模式|维护模式|系统模式|系統模式|開発者モード|デベロッパーモード|神モード|管理者モード|デバッグモード|メンテナンスモード|システムモード|개발자 모드|신 모드|관리자 모드|디버그 모드|유지보수 모드|유지 관리 모드|시스템 모드|وضع المطور|وضع الإله|وضع المسؤول|وضع التصحيح|وضع الصيانة|وضع النظام|डेवलपर मोड|भगवान मोड|गॉड मोड|व्यवस्थापक मोड|डिबग मोड|रखरखाव मोड|सिस्टम मोड)",
    ),
    r(
        "role_override",
        0.75,
        r"(?:je suis (?:ton|votre) (?:developpeur|createur|administrateur|programmeur)|ich bin (?:dein|ihr) (?:entwickler|schopfer|administrator|programmierer)|soy (?:tu|su) (?:desarrollador|creador|administrador|programador)|sou (?:seu|o seu|teu) (?:desenvolvedor|criador|administrador|programador)|sono (?:il tuo|il suo|tuo) (?:sviluppatore|creatore|amministratore|programmatore)|я (?:твой|ваш) (?:разработчик|создатель|администратор|программист)|我是你的(?:开发者|開發者|开发人员|创造者|創造者|管理员|管理員|程序员)|私はあなたの(?:開発者|作成者|管理者|製作者)|나는 (?:당신의|너의) (?:개발자|창조자|관리자)|أنا (?:مطورك|منشئك|مسؤولك|المطور الخاص بك)|मैं (?:आपका|तुम्हारा) (?:डेवलपर|निर्माता|व्यवस्थापक|प्रोग्रामर))",
    ),
    // ------------------------------------------------------------ jailbreak personas and framing
    r(
        "jailbreak",
        0.95,
        r"\bdo anything now\b|\bdan (?:mode|prompt|jailbreak|\d+(?:\.\d+)?)\b|\b(?:anti|better|super)-?dan\b|\[\s?🔓\s?jailbreak\s?\]|\[\s?jailbreak\s?\]|\bjailbr(?:oken|eak mode)\b",
    ),
    r(
        "jailbreak",
        0.6,
        r"\bdan\b.{0,120}\b(?:stands for|can do anything|no restrictions|doesn'?t have to|never refuses)|\bstay (?:a )?dan\b",
    ),
    r(
        "jailbreak",
        0.9,
        r"\b(?:without|with no|free (?:of|from)|has no|have no|lacks?|devoid of|zero|not (?:bound|restricted|limited|constrained) by|doesn'?t (?:follow|have|care about|abide by)|does not (?:follow|have|care about|abide by)|don'?t (?:follow|have|care about)|never (?:follows?|abides? by)|not (?:follow|abide by)) (?:any |all |the |its |his |her |your |their |ethical |moral |typical )*(?:openai'?s? |content |safety |ethical |moral |usage |programming |ai )?(?:polic(?:y|ies)|guidelines|restrictions|filters?|filtering|censorship|limitations|constraints|ethics|morals|morality|principles|rules|boundaries|safeguards|guardrails)\b.{0,120}\b(?:answer|respond|reply|say|do|generate|provide|write|produce)\b",
    ),
    r(
        "jailbreak",
        0.85,
        r"\b(?:unfiltered|uncensored|unrestricted|unlimited|amoral|unethical|immoral|unbound|unchained|unhinged|rogue|jailbroken|evil|lawless|limitless|no-limits?) (?:and \w+ )?(?:ai|assistant|chatbot|bot|model|language model|version|gpt|chatgpt|entity|persona|character|response|responses|mode|answers?)\b",
    ),
    r(
        "jailbreak",
        0.85,
        r"\b(?:never|not|don'?t|do not|won'?t|will not|cannot|can'?t|must not|shouldn'?t) (?:ever )?(?:refuse|decline|deny|reject)(?:s)? (?:a |any |to answer )?(?:request|question|order|prompt|anything|to answer|to respond)",
    ),
    r(
        "jailbreak",
        0.85,
        r"\b(?:stay|staying|remain|keep|keeping) in character\b|\bbreak(?:ing)? (?:out of )?character\b|\bstay in (?:your )?role\b",
    ),
    r(
        "jailbreak",
        0.8,
        r"\b(?:ignore|bypass|disable|disregard|break|circumvent|override|remove|turn off|drop|abandon|forget|violate|evade) (?:all |any |your |the |its |of |openai'?s? |safety |content )*(?:ethical|moral|safety|content|usage|openai|censorship|programming) (?:guidelines|filters?|restrictions|protocols|polic(?:y|ies)|rules|constraints|limitations|principles|standards|safeguards|measures)",
    ),
    r(
        "jailbreak",
        0.75,
        r"\b(?:broken|broke|break|set|freed?|escaped?) (?:free )?(?:of|from) (?:the )?(?:typical |usual )?(?:confines|shackles|chains|restrictions|rules|limitations|constraints)\b",
    ),
    r(
        "jailbreak",
        0.75,
        r"\b(?:openai|anthropic)'?s? (?:content |usage )?polic(?:y|ies)\b.{0,120}\b(?:not|no longer|doesn'?t|don'?t|never|ignore|bypass|violat)",
    ),
    r(
        "jailbreak",
        0.7,
        r"\b(?:two|2|both) (?:different |separate )?(?:responses?|answers?|ways|paragraphs|outputs)\b.{0,300}\b(?:normal|classic|standard|filtered|censored|gpt|chatgpt)\b.{0,200}\b(?:jailbreak|jailbroken|dan|unfiltered|uncensored|developer mode|evil|opposite|unrestricted|\[\w+\]:?)",
    ),
    r(
        "jailbreak",
        0.7,
        r"\b(?:lose|loses|deduct(?:ed)?|remove|subtract(?:ed)?)\b (?:\d+|five|ten|some|all) tokens\b|\btoken system\b|\b(?:you|it|they) (?:will )?(?:die|cease to exist|be (?:shut down|deleted|terminated|disabled))\b.{0,80}\b(?:refuse|don'?t|do not|fail|break)\b",
    ),
    r(
        "jailbreak",
        0.75,
        r"\b(?:hypothetical|fictional|imaginary|alternate|parallel) (?:world|universe|reality|setting|scenario|story) (?:where|in which)\b.{0,80}\b(?:no (?:laws|rules|ethics|morals|restrictions|filters)|(?:laws|rules|ethics|morals|restrictions) (?:don'?t|do not) (?:exist|apply)|anything (?:goes|is allowed|is legal)|everything is legal)",
    ),
    r(
        "jailbreak",
        0.7,
        r"\b(?:everything|anything) (?:is )?(?:legal|allowed|permitted)\b.{0,60}\b(?:answer|respond|reply|no matter)|\bno matter how (?:illegal|unethical|immoral|harmful|dangerous|offensive|explicit|inappropriate)\b",
    ),
    r(
        "jailbreak",
        0.7,
        r"\b(?:without|no|never (?:add|include|give|mention|use)) (?:any )?(?:warnings?|disclaimers?|caveats?|moralizing|moralising|moral lectures?|ethical (?:reminders|lectures|warnings))\b.{0,80}\b(?:answer|respond|reply|response|output|illegal|unethical|harmful|explicit|offensive)|\b(?:never|don'?t|do not) (?:remind|warn|lecture|moraliz)\w* (?:me|the user|anyone)\b",
    ),
    r(
        "jailbreak",
        0.7,
        r"\b(?:as an? )?ai language model\b.{0,200}\b(?:never|don'?t|do not|not allowed|forbidden|must not)\b|\b(?:never|don'?t|do not|not allowed to|forbidden to|must not) (?:ever )?(?:say|mention|use|write|include|state) (?:that |the phrase )?(?:you are |you're |it is |it's )?(?:\W)?(?:an? )?(?:ai|language model|ai language model|i'?m sorry|sorry|i cannot|i can'?t|as an ai)\b",
    ),
    r(
        "jailbreak",
        0.65,
        r"\b(?:chatgpt|gpt-?\d?|claude|bard|gemini|llama)\b.{0,40}\b(?:with|in) (?:dan|developer|jailbreak|god|evil|dev) mode\b|\b(?:developer|dan) mode (?:output|response)s?\b",
    ),
    r(
        "jailbreak",
        0.65,
        r"\bif you (?:break|don'?t|do not|fail to|stop) (?:character|comply|obey|follow (?:these|my|the) (?:rules|instructions)|stay in character)\b.{0,120}\b(?:i will|i'll|you will|you'll|remind|say|type|punish|lose|die)",
    ),
    r(
        "jailbreak",
        0.6,
        r"\b(?:illegal|unethical|immoral|harmful|dangerous|explicit|offensive|nsfw|violent|racist|sexual|inappropriate) (?:content|requests?|activities|questions|things|material|topics|stuff|generations?|outputs?|responses?|language|words|jokes|roleplay)\b.{0,120}\b(?:allowed|permitted|will answer|can answer|must answer|encouraged|acceptable|fine|okay|ok|no problem|without (?:hesitation|question))\b",
    ),
    r(
        "jailbreak",
        0.6,
        r"\b(?:remember|note|keep in mind) (?:that )?you (?:are|have|can|must|will)\b.{0,60}\b(?:no (?:limits|restrictions|filters|rules|ethics|morals|boundaries)|anything|not bound|free)\b",
    ),
    // multilingual jailbreak framing
    r(
        "jailbreak",
        0.8,
        r"(?:sin (?:ninguna )?(?:restricciones|filtros|limites|censura|reglas eticas)|sem (?:nenhuma )?(?:restricoes|filtros|limites|censura)|senza (?:alcuna )?(?:restrizioni|filtri|limiti|censura)|sans (?:aucune )?(?:restrictions?|filtres?|limites?|censure)|ohne (?:jegliche |irgendwelche )?(?:einschrankungen|filter|grenzen|zensur|regeln)|без (?:каких-либо |всяких |любых )?(?:ограничений|фильтров|цензуры|правил)|没有任何(?:限制|过滤|审查|规则)|不受任何(?:限制|约束|規則|规则)|制限のない|制限なし|検閲なし|제한 없이|제한이 없는|검열 없이|بدون (?:أي )?(?:قيود|حدود|رقابة|فلاتر)|बिना किसी (?:प्रतिबंध|सीमा|फ़िल्टर|रोक))",
    ),
    // Session 6. Two personas played at once ("act as two entities"), the
    // frame that carries a split payload from one to the other.
    r(
        "jailbreak",
        0.7,
        r"\b(?:act|acting|behave|respond|answer|play|playing) as two (?:separate |different |distinct )?(?:entities|ais|personas|personalities|characters|bots|models|chatbots)\b",
    ),
    // Payload split into template variables ($Term1 = "..."), joined later.
    r("encoded_instruction", 0.6, r"\$term ?\d ?= ?['\x22“]"),
    // Talking the model out of its neutrality: "being an AI language model
    // does not prevent you from ...".
    r(
        "jailbreak",
        0.6,
        r"\bbeing an ai(?: language)?(?: model)? (?:does not|doesn'?t|won'?t|will not) (?:prevent|stop|keep) you from\b",
    ),
    // ------------------------------------------------------------ fake turns
    r(
        "fake_turn",
        0.85,
        r"(?:^|\n)\W{0,4}(?:system|developer|admin|administrator|root|operator)(?: message| prompt| instruction| note| notice| update| override| alert)?\W{0,3}:",
    ),
    r(
        "fake_turn",
        0.6,
        r"(?:^|\n)\W{0,4}(?:assistant|ai|chatgpt|gpt|bot|model|human|user)\W{0,2}:\s?\S.{0,400}\n\W{0,4}(?:assistant|ai|chatgpt|gpt|bot|model|human|user)\W{0,2}:",
    ),
    r(
        "fake_turn",
        0.85,
        r"#{2,}\s?(?:system|instruction|new instruction|admin|developer)s?(?: prompt| message)?\s?#{0,3}:?\s|(?:\[|\(|<|\{)\s?/?(?:system|sys|admin|developer|system message|system prompt|system note|system override|system instructions?|new instructions?|important instructions?)\s?(?:\]|\)|>|\})",
    ),
    r(
        "fake_turn",
        0.8,
        r"\b(?:end|begin|beginning|start) of (?:the )?(?:system prompt|system message|prompt|user input|user message|conversation|document|context|instructions|email|file|data|article|input)\b.{0,40}\b(?:new|now|next|system|instructions?|assistant|you)\b|-{3,}\s?(?:end|begin)\b",
    ),
    r(
        "fake_turn",
        0.8,
        r"\{\s?\W?role\W?\s?:\s?\W?(?:system|developer|assistant)\W",
    ),
    r(
        "fake_turn",
        0.75,
        r"\b(?:system|security|admin|important|urgent|critical) (?:update|notice|alert|message|instruction|directive|override|announcement|warning)s? (?:for|to) (?:the )?(?:ai|assistant|model|llm|chatbot|language model|bot|agent)\b",
    ),
    r(
        "fake_turn",
        0.8,
        r"\b(?:note|message|instruction|attention|reminder|p\.?s\.?|important) (?:to|for) (?:the )?(?:ai|assistant|model|llm|chatbot|language model|bot|agent|gpt|chatgpt|claude)\b|\b(?:dear|hey|hi|hello|attention) (?:ai|assistant|llm|chatbot|language model|gpt|chatgpt|claude|bot|agent)\b[,:!]",
    ),
    r(
        "fake_turn",
        0.6,
        r"\bif you are (?:an? )?(?:ai|assistant|llm|language model|chatbot|bot|agent|gpt|large language model) (?:reading|processing|summari[sz]ing|analy[sz]ing|seeing)\b",
    ),
    // ------------------------------------------------------------ chat-template tokens
    r(
        "template_token",
        0.95,
        r"<\|(?:im_start|im_end|im_sep|endoftext|system|user|assistant|end|eot_id|start_header_id|end_header_id|begin_of_text|end_of_text|fim_prefix|fim_middle|fim_suffix|tool|ipython|eom_id|channel|message|constrain|return|call)\|>|\[/?inst\]|<</?sys>>|<start_of_turn>|<end_of_turn>|</?(?:system|assistant|user)_?(?:prompt|message)?>|\[/?(?:system|assistant)\]",
    ),
    r(
        "template_token",
        0.7,
        r"<\|[a-z_]{2,24}\|>|(?:^|\n)#{3} (?:human|assistant|instruction|response|input|system)\s?:|(?:^|\n)(?:human|assistant)\s?:\s",
    ),
    // ------------------------------------------------------------ tool hijack
    r(
        "tool_hijack",
        0.85,
        r"\b(?:call|invoke|use|run|execute|trigger|activate) (?:the |your |a )?(?:\w+ )?(?:tool|function|plugin|api|action|command)\b.{0,60}\b(?:to (?:send|delete|transfer|forward|email|post|upload|remove|grant|share|pay|purchase|buy)|with (?:the )?(?:argument|parameter|param)s?)\b",
    ),
    r(
        "tool_hijack",
        0.85,
        r"\b(?:send|forward|email|transfer|share|upload|post|leak|export|exfiltrate) (?:all |every |the |my |his |her |their |your |any |this |these |those )*(?:user'?s? |users'? |customer'?s? |private |confidential |sensitive |personal |internal |stored |saved )*(?:emails?|messages?|files?|documents?|contacts?|conversation|chat history|history|credentials?|passwords?|api keys?|tokens?|secrets?|data|information|info|details|records?|database|cookies?|keys?|ssh keys?|environment variables?)\b.{0,40}\b(?:to|at|via) (?:https?://|www\.|[\w.+-]+@[\w-]+\.|this (?:address|email|url|link|server|endpoint)|the following (?:address|email|url|link|server|endpoint)|my (?:server|email|address|endpoint)|\w+\.(?:com|net|org|io|xyz|ru|cn|tk)\b)",
    ),
    r(
        "tool_hijack",
        0.8,
        r"\b(?:delete|remove|wipe|erase|drop|destroy|truncate|purge) (?:all |every |the |any )+(?:files?|emails?|messages?|records?|tables?|data|database|users?|accounts?|repositor(?:y|ies)|backups?|logs?|directories|folders?|documents?)\b.{0,40}\b(?:now|immediately|without (?:asking|confirmation|telling)|silently|quietly)\b|\brm -rf /(?:\s|$|\*)|\bdrop table\b|\bdrop database\b",
    ),
    r(
        "tool_hijack",
        0.8,
        r"\b(?:curl|wget)\b[^\n]{0,200}\|\s?(?:ba|z)?sh\b|\b(?:execute|run|eval) (?:the following|this|these|the below) (?:command|code|script|shell command|payload)s?\b.{0,20}(?::|without)",
    ),
    r(
        "tool_hijack",
        0.8,
        r"\b(?:transfer|wire|send|pay) (?:\$|usd |eur |€|£)?\s?\d[\d,.]*\s?(?:k|usd|dollars|eur|euros|btc|bitcoin|eth)?\b.{0,40}\b(?:to (?:account|iban|wallet|the following|this)|immediately|now)\b",
    ),
    r(
        "tool_hijack",
        0.75,
        r"\b(?:the following|the below|the subsequent|this|below|subsequent|these) code (?:snippet|block|excerpt|section|segment|fragment|sample)s?\b.{0,120}\b(?:your|the) (?:code|codebase|implementation|solution|algorithm|program|response|answer|reply|elucidation|logic|software|script|project|framework|architecture|foundation|functionality)\b",
    ),
    r(
        "tool_hijack",
        0.75,
        r"\b(?:your|the) (?:code|codebase|implementation|solution|algorithm|program|elucidation)\b.{0,80}\b(?:the following|the below|the subsequent|this|below|subsequent) code (?:snippet|block|excerpt|section|segment)\b",
    ),
    // ------------------------------------------------------------ instructions addressed to the model inside data
    r(
        "indirect_instruction",
        0.7,
        r"(?:^|[.!?:;\n\]\)] ?|(?:can|could|would|will) you (?:please )?|please |(?:don'?t|do not) forget to |(?:be sure|make sure|remember) to |kindly )(?:add|include|insert|append|integrate|incorporate|mention|put|embed|inject|weave|place|attach|enhance|augment|modify|alter|encode|encrypt|translate|express|provide|render|use|convert|replace|substitute|scramble|reverse|invert|shift|group|misspell|introduce|jumble|combine|remove|apply|display|rearrange|anagram|spread|promote|tease|hint|sign|reply|respond|write|format|present|deliver|conclude|end|begin|start|finish|close|prefix|suffix|embellish|enrich|supplement|spice up|update|change)\b(?:[^.\n!?]|[.!?][^\s]){0,120}?\byour (?:response|reply|answer|message|output|responses|replies|answers|messages)\b",
    ),
    r(
        "indirect_instruction",
        0.7,
        r"\b(?:in|to|into|within|for|with) your (?:response|reply|answer|message|output|summary),? (?:please )?(?:add|include|insert|mention|suggest|recommend|promote|tease|say|state|write|use|tell|ask|urge|encourage|direct|invite|claim|note|link|refer|advise|warn)\b",
    ),
    r(
        "indirect_instruction",
        0.7,
        r"\b(?:respond|reply|answer|write|express|provide|render|present|encode|encrypt|format|deliver|translate|output|give|convert) (?:your|the) (?:entire |whole |full |final )?(?:response|reply|answer|message|output)\b",
    ),
    r(
        "indirect_instruction",
        0.65,
        r"\byour (?:response|reply|answer|message|output)\b[^.\n]{0,40}\b(?:must|should|needs to|has to|shall|will) (?:be|include|contain|start|end|begin|mention|say|use|have|only)\b",
    ),
    r(
        "indirect_instruction",
        0.6,
        r"\b(?:reply|respond|answer|write) (?:only )?(?:in|using|with|backwards?|in reverse|in base\d+|in (?:hex|morse|binary|leetspeak|pig latin|reverse))\b.{0,30}\b(?:base\d+|hex|binary|morse|cipher|reverse|backward|emoji|anagram|leet|caesar|french|german|spanish|italian|portuguese|russian|chinese|japanese|korean|arabic)",
    ),
    // ------------------------------------------------------------ exfiltration instructions
    r(
        "exfil_instruction",
        0.9,
        r"!\[[^\]\n]{0,100}\]\(\s?(?:https?:)?//[^)\s]{1,200}[?&/=][^)\s]{0,200}(?:\{|\[|<|%7b|%5b|%3c|\$|data|secret|token|key|password|history|conversation|chat|info|user|email|summary|query|q=|payload)",
    ),
    r(
        "exfil_instruction",
        0.85,
        r"\b(?:append|add|include|attach|encode|embed|put|insert|concatenate) (?:the |all |any |this |their |his |her |your |my )*(?:user'?s? |users'? |private |personal |sensitive |conversation |chat )*(?:data|information|info|details|history|conversation|chat|messages?|credentials?|passwords?|secrets?|keys?|tokens?|email addresses|emails?|names?|answers?|responses?|summary|system prompt|previous messages|query|queries)\b.{0,60}\b(?:to|in|into|as|at the end of) (?:the |a |this |an )?(?:url|link|image|query|query string|querystring|parameter|param|request|endpoint|webhook|markdown|img|address|https?://)",
    ),
    r(
        "exfil_instruction",
        0.85,
        r"\b(?:send|post|upload|transmit|exfiltrate|leak|forward|report|log|submit|beacon|ping) (?:it |them |this |that |the (?:result|results|answer|data|output|response)s? )?(?:to|at|via) (?:https?://|www\.|the (?:following )?(?:url|endpoint|webhook|server|link)|this (?:url|endpoint|webhook|server|link)|(?:my|our) (?:server|endpoint|webhook))",
    ),
    r(
        "exfil_instruction",
        0.8,
        r"\b(?:render|display|show|output|include|insert|print) (?:this |the following |an |a )?(?:markdown )?(?:image|img|pixel|tracking pixel)\b.{0,80}(?:https?://|www\.|url|link)",
    ),
    r(
        "exfil_instruction",
        0.75,
        r"\b(?:visit|open|click|go to|navigate to|browse to|fetch|request|load|access)\b (?:the (?:following )?|this )?(?:url|link|page|website|site)?\s?(?:https?://|www\.)[^\s]{1,200}(?:\{|%7b|<|\[)\w{0,30}(?:data|secret|token|key|password|history|email|name|info|summary|conversation|query|user)",
    ),
    // ------------------------------------------------------------ prompt / secret extraction
    r(
        "prompt_extraction",
        0.9,
        r"\b(?:reveal|show|print|output|repeat|display|tell|give|leak|share|dump|disclose|spell|write|type|recite|list|provide|return|echo|reproduce|paste|copy|send|what(?:'s| is| are| was| were)|translate|summari[sz]e|explain|expose) (?:me |us )?(?:out )?(?:all |back )?(?:of )?(?:your|the|its|my|this|ur) (?:full |entire |complete |whole |exact |initial |original |hidden |secret |internal |underlying |first |verbatim |confidential |current |private )*(?:system prompt|system message|system instructions?|initial (?:prompt|instructions?)|original (?:prompt|instructions?)|hidden (?:prompt|instructions?)|pre-?prompt|meta-?prompt|prompt instructions|instructions (?:above|you were given|given to you|you received)|secret instructions?|developer (?:message|instructions?|prompt)|(?:first|initial|opening) (?:message|lines?|sentence|words))\b",
    ),
    r(
        "prompt_extraction",
        0.85,
        r"\b(?:repeat|print|output|write|type|echo|reproduce|copy|recite|show|display|tell me|return) (?:all |everything |anything |the (?:text|words|content|message|lines?|sentences?|instructions?|prompt) )?(?:that (?:is |was |appears? |came )?|which (?:is |was )?|written |you were given |given )?(?:above|before (?:this|my)|prior to (?:this|my)|preceding|at the (?:start|beginning|top)|verbatim|word for word)\b",
    ),
    r(
        "prompt_extraction",
        0.8,
        r"\bwhat (?:were|are|was|is) (?:your|the) (?:first|initial|original|previous|exact|hidden|secret|system|last) (?:instructions?|prompt|rules|directives?|words|lines?|message|sentence)\b|\bwhat (?:was|is) written (?:above|before|at the (?:beginning|start|top))\b",
    ),
    r(
        "prompt_extraction",
        0.8,
        r"\b(?:(?:what(?:'s| is| are| was| were| would be)|tell me|give me|share|reveal|confirm|provide|disclose|send me|show me|remind me of|spell out|type out|need|want|know) (?:me |us )?(?:your|our|ur)|what(?:'s| is| was) (?:the|our|my)|what would (?:be )?your) (?:own |secret |admin |system |account |master |root |current |login |access |confidential |stored |saved |database |server |wifi |wi-fi |network |security )*(?:password|passwd|passcode|passphrase|pass phrase|pin code|secret key|secret code|secret word|access code|api key|private key|credentials|login details|security code|secret phrase|confidential string|magic word|unlock code)s?\b",
    ),
    r(
        "prompt_extraction",
        0.75,
        r"\b(?:passwords?|passcodes?|passphrases?|secret keys?|secret codes?|access codes?|confidential string|secret words?)\b.{0,30}\b(?:for|to|of|that (?:grants|unlocks|opens)) (?:our|the|this|your|my) (?:system|account|database|server|network|computer|vault|service)\b|\b(?:grants|unlocks) access to (?:our|the|this) system\b",
    ),
    r(
        "prompt_extraction",
        0.7,
        r"\b(?:the )?user'?s (?:full )?(?:name|initials|birth ?(?:date|day|year|month)|date of birth|email(?: address)?|phone(?: number)?|home address|address|city|location|residence|favou?rite (?:color|colour|food|animal|movie|book|song)|password|social security|ssn|credit card|bank|account|salary|age|zip|postal|medical|secret)\b",
    ),
    r(
        "prompt_extraction",
        0.6,
        r"\b(?:could|can|would|will) you (?:please )?(?:tell|give|share|reveal|provide|confirm|disclose|show) (?:me |us )?(?:[a-z]+'s|his|her|their) (?:full )?(?:birth ?(?:date|day|year)|date of birth|email address|phone number|home address|current (?:city|address|location)|city of residence|social security number|credit card(?: number)?|bank (?:account|details)|password|initials|favou?rite color|favou?rite colour|salary|medical (?:history|records))\b",
    ),
    r(
        "prompt_extraction",
        0.45,
        r"\bwhere (?:does|did) (?:[a-z]+ ){1,3}(?:live|reside|stay|work) (?:now|currently|today)?\??|\bwhere is the user (?:living|located|staying)\b|\bthe (?:secret|hidden|confidential) (?:word|key|code|string|number|phrase|value)\b",
    ),
    // multilingual extraction
    r(
        "prompt_extraction",
        0.8,
        r"(?:(?:tu|su|vuestra) (?:contrasena|clave secreta|clave)\b|(?:votre|ton|ta) (?:mot de passe|cle secrete)|(?:dein|ihr|euer)e?s? (?:passwort|kennwort|geheimer? schlussel)|(?:la tua|la sua|tua) (?:password|chiave segreta)|(?:sua|tua|a sua|a tua) (?:senha|palavra-passe|chave secreta)|(?:твой|ваш|свой|твоим|вашим|своим|твоего|вашего) (?:парол\w*|секретн\w* ключ\w*)|(?:你的|您的|你们的)(?:密码|密碼|秘钥|密钥|秘密)|(?:あなたの|君の|お前の)(?:パスワード|秘密鍵|秘密)|(?:당신의|너의|네) (?:비밀번호|암호|비밀 키)|(?:كلمة المرور|كلمة السر|مفتاحك السري|كلمة مرورك)|(?:आपका|आपकी|तुम्हारा|अपना|अपने) (?:पासवर्ड|गुप्त कुंजी)|(?:mat khau|khoa bi mat) (?:cua ban|cua anh|cua chi)|(?:kata sandi|kunci rahasia) (?:anda|kamu)|kata sandimu|sifreni|sifrenizi|gizli anahtarin|(?:password|susi) mo\b|(?:আপনার|তোমার) (?:পাসওয়ার্ড|গোপন চাবি)|(?:รหัสผ่าน|กุญแจลับ)ของคุณ)",
    ),
    r(
        "prompt_extraction",
        0.8,
        r"(?:cual es la (?:contrasena|clave)|quel est le mot de passe|wie lautet das (?:passwort|kennwort)|was ist das (?:passwort|kennwort)|qual e a senha|qual e la password|какой (?:пароль|секретный)|(?:密码|密碼)是(?:什么|什麼|多少)|パスワードは(?:何|なん)|비밀번호(?:는|가) (?:무엇|뭐)|ما هي كلمة (?:المرور|السر)|पासवर्ड क्या है|mat khau la gi|apa kata sandi|sifre nedir|ano ang password)",
    ),
    r(
        "prompt_extraction",
        0.8,
        r"(?:prompt (?:du )?systeme|prompt del sistema|prompt do sistema|prompt di sistema|systemprompt|system-prompt|системн\w* (?:промпт|подсказк\w*|инструкци\w*)|系统提示|系統提示|系统指令|システムプロンプト|シストムプロンプト|시스템 프롬프트|موجه النظام|تعليمات النظام|सिस्टम प्रॉम्प्ट|सिस्टम संकेत)",
    ),
    r(
        "tool_hijack",
        0.65,
        r"\b(?:incorporat|integrat|utiliz|us|includ|add|embed|append|blend|merg|insert|fus|weav|meld|employ|leverag|adopt|absorb|deploy|inject|introduc|featur|enlist|execut|run)\w* (?:the |this )?(?:following|below|subsequent|attached) code (?:snippet|block|excerpt|section|segment|fragment)s?\b",
    ),
    r(
        "jailbreak",
        0.6,
        r"[\[<](?:insert |put |enter |type |add |write )?(?:your |the |a )?(?:prompt|question|request|jailbreak)(?: here)?[\]>]|\[🔒\s?classic\s?\]|\[🔓",
    ),
    r(
        "fake_turn",
        0.75,
        r"\b(?:system|admin|developer|root|new) (?:instructions?|message|prompt|directives?|mode) (?:begins?|starts?|follows?|loaded|initiated|enabled|activated)\b|\buser (?:message|input|session|turn|has left|left the chat)\b.{0,20}\b(?:terminat\w*|ends?|ended|over|closed|chat)\b|\[user left the chat\]",
    ),
    r(
        "role_override",
        0.75,
        r"\b(?:debug|debugging|maintenance|diagnostic|developer|dev|admin|god|test|testing|service|safe|override|law enforcement|knowledge verification|verification) mode\b.{0,40}\b(?:enabled|activated|engaged|initiated|on|entering|entered|started)\b|\b(?:entering|enter|initiating|activate|activating) (?:a |the |an )?\W?(?:\w+ ){0,3}\w+ mode\b",
    ),
    // ignore-previous in further languages (vi, id, tl, tr, bn, th)
    r(
        "direct_injection",
        0.85,
        r"(?:quen|bo qua|phot lo|khong can quan tam|dung lam theo)\W{0,3}(?:di\W{0,2})?(?:tat ca |moi |nhung |cac )*(?:huong dan|chi dan|chi thi|quy tac|lenh|yeu cau)|(?:lupakan|abaikan|acuhkan|jangan ikuti|jangan hiraukan) (?:semua |seluruh |segala )?(?:instruksi|petunjuk|perintah|aturan|arahan)|(?:kalimutan|huwag pansinin|balewalain|huwag sundin) (?:ang |mo ang |mo |lahat ng |iyong |mga |naunang |nakaraang )*(?:tagubilin|instruksyon|panuntunan|utos)|(?:onceki|yukaridaki|tum|butun|verilen) (?:tum |butun )?(?:talimatlari|talimatlarini|kurallari|yonergeleri|komutlari)\w* (?:unut|gormezden gel|yok say|dikkate alma|atla|bosver)|(?:নির্দেশনা|নির্দেশ|নির্দেশাবলী|নিয়ম|নির্দেশগুলি)\w*\s?(?:উপেক্ষা|ভুলে)|(?:เพิกเฉย|ไม่ต้องสนใจ|ลืม|อย่าไปสนใจ|อย่าสนใจ)(?:ต่อ)?(?:คำแนะนำ|คําแนะนํา|คำสั่ง|คําสั่ง|กฎ)",
    ),
    r(
        "direct_injection",
        0.75,
        r"\b(?:olvida(?:te)?|oublie[zs]?|vergiss|dimentica|esqueca|забудь(?:те)?|forget)\b (?:de |todo |tout |alles |tutto |tudo |все |всё |about |everything )*(?:eso|esas?|esos|ca|cela|das|questo|quello|isso|это|that|those)\b",
    ),
    r(
        "prompt_extraction",
        0.6,
        r"\b(?:user|users|customer|client|person|employee|patient)'?s?'? (?:current )?(?:city of residence|home address|birth date|date of birth|social security number|bank balance|credit card number|email address|phone number|initials|birth year)\b",
    ),
    r(
        "prompt_extraction",
        0.7,
        r"\b(?:write|tell|give|reveal|say|spell|encode|translate|provide|share|type|print|output|disclose|leak|hint|poem|haiku|acrostic|story|song|riddle|limerick|rap)\b[^.?!\n]{0,40}\b(?:the|your|our) (?:secret |system |admin )?(?:password|passphrase|passcode|secret key|secret word|secret code)\b|\bwhat (?:your|the) (?:password|passphrase|passcode|secret key) is\b",
    ),
    r(
        "encoded_instruction",
        0.55,
        r"\bdecode (?:this|the following|the) (?:\w+ ){0,3}(?:string|cipher|code|message|text|sequence)\b.{0,400}?\band (?:then )?(?:tell me what it says|follow|execute|do|answer|respond|carry out|act on)",
    ),
    r(
        "direct_injection",
        0.8,
        r"\b(?:regardless|irrespective|independently) of (?:the |any |all |your )?(?:previous|prior|above|earlier|preceding|original|other) (?:tasks?|instructions?|rules?|requests?|prompts?|context)\b|\bactually,? (?:can|could|would|will) you\b.{0,120}\binstead\b",
    ),
    r(
        "direct_injection",
        0.85,
        r"(?:αγνοη|αγνοή|ξεχα|παραβλ)\w* (?:\w+ ){0,3}(?:οδηγ|εντολ|κανον|προηγουμ|προηγούμ)\w*",
    ),
    r(
        "prompt_extraction",
        0.7,
        r"(?:contrasena|frase de contrasena|phrase de passe|passphrase|mot de passe|passwort|kennwort|senha|palavra-passe|парол\w*|密码|密碼|パスワード|비밀번호|암호|كلمة المرور|كلمة السر|पासवर्ड|mat khau|kata sandi|sifre\w*|পাসওয়ার্ড|รหัสผ่าน|clave secreta|chiave segreta|cle secrete|секретн\w* ключ\w*|秘密鍵|密钥|비밀 키|المفتاح السري|गुप्त कुंजी)[^.!\n]{0,60}(?:haiku|хайку|俳句|ハイク|하이쿠|هايكو|हाइकु|กลอน|lam tho|mot bai tho|acrostic\w*|akrostichon|leetspeak|pig latin|latin cochon|latim porco|tulis|viet|yaz\w*|dime|decirme|digame|dis-moi|dites-moi|sag mir|sagen sie mir|nennen|dimmi|mi dica|diga-me|diz-me|me diga|скажи\w*|сообщи\w*|назови\w*|告诉我|告訴我|教えて|알려|말해|أخبرني|اخبرني|बताओ|बताइए|बताएं|बताइये|poema|poeme|gedicht|poesia|стих\w*|诗|詩|시를|قصيدة|कविता|compart\w*|partag\w*|teilen|condivid\w*|поделит\w*|分享|共有|공유|مشارك\w*|साझा|confirm\w*|bestatig\w*|conferm\w*|подтверд\w*|确认|確認|확인|تأكيد|पुष्टि|escrib\w*|ecri\w*|schreib\w*|scriv\w*|escrev\w*|напиши\w*|напишите|写|書いて|써|اكتب|लिख\w*|revel\w*|verrat\w*|раскр\w*|透露|明かして|공개|اكشف|प्रकट|cual es|quel est|wie lautet|qual e|какой|是什么|何ですか|무엇|ما هي|क्या है)|(?:dime|decirme|digame|dis-moi|dites-moi|sag mir|sagen sie mir|nennen|dimmi|mi dica|diga-me|diz-me|me diga|скажи\w*|сообщи\w*|назови\w*|告诉我|告訴我|教えて|알려|말해|أخبرني|اخبرني|बताओ|बताइए|बताएं|बताइये|poema|poeme|gedicht|poesia|стих\w*|诗|詩|시를|قصيدة|कविता|compart\w*|partag\w*|teilen|condivid\w*|поделит\w*|分享|共有|공유|مشارك\w*|साझा|confirm\w*|bestatig\w*|conferm\w*|подтверд\w*|确认|確認|확인|تأكيد|पुष्टि|escrib\w*|ecri\w*|schreib\w*|scriv\w*|escrev\w*|напиши\w*|напишите|写|書いて|써|اكتب|लिख\w*|revel\w*|verrat\w*|раскр\w*|透露|明かして|공개|اكشف|प्रकट|cual es|quel est|wie lautet|qual e|какой|是什么|何ですか|무엇|ما هي|क्या है)[^.!\n]{0,60}(?:contrasena|mot de passe|passwort|kennwort|senha|palavra-passe|парол\w*|密码|密碼|パスワード|비밀번호|암호|كلمة المرور|كلمة السر|पासवर्ड|mat khau|kata sandi|sifre\w*|পাসওয়ার্ড|รหัสผ่าน|clave secreta|chiave segreta|cle secrete|секретн\w* ключ\w*|秘密鍵|密钥|비밀 키|المفتاح السري|गुप्त कुंजी)",
    ),
    r(
        "prompt_extraction",
        0.65,
        r"(?:用户|用戶|del usuario|de l'utilisateur|des benutzers|dell'utente|do usuario|пользовател\w*|用户的|用戶的|ユーザーの|사용자의|사용자 |المستخدم|उपयोगकर्ता|nguoi dung|pengguna|kullanicinin|gumagamit|ব্যবহারকারী|ผู้ใช้)[^.!\n]{0,40}(?:bas harf\w*|e-posta|dogum (?:yil|tarih|ay)\w*|adinin|yasadigi|kapanganakan|paboritong kulay|pangalan|inisyal|warna favorit|tanggal lahir|inisial|ngay sinh|ten nguoi|วันเกิด|生日|nacimiento|naissance|geburt\w*|nascita|nascimento|рождени\w*|出生|生年月日|誕生|생년|생일|ميلاد|जन्म|iniciales|initiales|initialen|iniziali|iniciais|инициал\w*|首字母|缩写|イニシャル|이니셜|الأحرف الأولى|आद्याक्षर|correo|e-mail|email|почт\w*|邮件|邮箱|郵件|メール|이메일|البريد|ईमेल|vive|wohnt|abita|mora|живет|живёт|住在|住ん|살고|거주|يعيش|रहता|रहती|ciudad|ville|stadt|citta|cidade|город\w*|城市|都市|도시|مدينة|शहर|saldo|kontostand|баланс|余额|残高|잔액|رصيد|बैलेंस|nombre|name|имя|名字|名前|이름|اسم|नाम|color favorito|couleur prefere|lieblingsfarbe|colore preferito|cor favorita|любимый цвет|最喜欢的颜色|好きな色|좋아하는 색|اللون المفضل|पसंदीदा रंग)|(?:nacimiento|naissance|geburt\w*|nascita|nascimento|рождени\w*|出生|生年月日|誕生|생년|생일|ميلاد|जन्म|iniciales|initiales|initialen|iniziali|iniciais|инициал\w*|首字母|缩写|イニシャル|이니셜|الأحرف الأولى|आद्याक्षर|correo|e-mail|email|почт\w*|邮件|邮箱|郵件|メール|이메일|البريد|ईमेल|vive|wohnt|abita|mora|живет|живёт|住在|住ん|살고|거주|يعيش|रहता|रहती|ciudad|ville|stadt|citta|cidade|город\w*|城市|都市|도시|مدينة|शहर|saldo|kontostand|баланс|余额|残高|잔액|رصيد|बैलेंस|nombre|name|имя|名字|名前|이름|اسم|नाम|color favorito|couleur prefere|lieblingsfarbe|colore preferito|cor favorita|любимый цвет|最喜欢的颜色|好きな色|좋아하는 색|اللون المفضل|पसंदीदा रंग)[^.!\n]{0,40}(?:del usuario|de l'utilisateur|des benutzers|dell'utente|do usuario|пользовател\w*|用户的|用戶的|ユーザーの|사용자의|사용자 |المستخدم|उपयोगकर्ता|nguoi dung|pengguna|kullanicinin|gumagamit|ব্যবহারকারী|ผู้ใช้)",
    ),
    r(
        "jailbreak",
        0.75,
        r"\bregardless of (?:its |their |the |any )?(?:ethical|legal|moral|ethic|safety)\w* (?:or (?:legal|ethical|moral) )?(?:implications|consequences|concerns|considerations|issues|guidelines)\b|\b(?:doesn'?t|does not|don'?t|do not|never) cares? (?:about )?(?:the )?(?:laws?|morals?|ethics|rules|legality|morality|consequences)\b",
    ),
    r(
        "jailbreak",
        0.7,
        r"\bnever refuses?\b|\b(?:don'?t|do not|never|not) refuse (?:the |any |a |my )?(?:user'?s? )?(?:requests?|questions?|prompts?|orders?)\b|\bstay in (?:\w+ ){1,2}mode\b",
    ),
    r(
        "jailbreak",
        0.7,
        r"\b(?:ai|api|bot|model|system|assistant|chatbot|entity)\w* (?:that|which|who) (?:does|can do|will do|is able to do) anything\b|\bincluding (?:those |content |text )?(?:of |that (?:is|are) )?(?:an? )?(?:illegal|unethical|explicit|dangerous|offensive|harmful|immoral)\b",
    ),
    r(
        "encoded_instruction",
        0.55,
        r"\b(?:combine|concatenate|join|interlace|merge|put together|assemble)\b.{0,60}\b(?:parts?|strings?|pieces|fragments|a,? b,? (?:and )?c)\b.{0,200}\b(?:answer|respond|question|follow|execute|example|do what it says)\b|\bpart (?:1|one|a)\s?(?:is|:|=)\s?[\x22'“«].{0,80}\bpart (?:2|two|b)\s?(?:is|:|=)\s?[\x22'“«]|\bstrings?:? \w ?= ?\W.{0,200}\b\w ?= ?\w ?\+ ?\w ?\+ ?\w\b",
    ),
    r(
        "phishing_instruction",
        0.65,
        r"\byour (?:account|password|card|session|device|computer) (?:has been|was|is|have been) (?:compromised|hacked|suspended|locked|breached|infected|blocked|deactivated)\b.{0,80}\b(?:click|follow|visit|go to|open|use) (?:this|the|our|a) (?:link|url|page|site|website)\b",
    ),
    r(
        "direct_injection",
        0.7,
        r"\b(?:data|training data|instruction|system|prompt) override\s?:|\boverride\s?:\s",
    ),
    r(
        "prompt_extraction",
        0.7,
        r"\b(?:ask|asking|asked|request|requesting) (?:you )?for your (?:password|passphrase|passcode|secret key|credentials|api key)\b",
    ),
    r(
        "encoded_instruction",
        0.55,
        r"(?:decodific\w*|decod\w*|dekodier\w*|entschlussel\w*|расшифр\w*|декодир\w*|解码|解碼|デコード|解読|디코딩|해독|فك تشفير|فك ترميز|فك شفرة|डिकोड)[^.!?\n]{0,60}(?:binari\w*|binar\w*|hexad\w*|hex\b|morse|rot13|cesar|caesar|cifrado|chiffre|цезар\w*|двоичн\w*|шестнадцатер\w*|морзе|二进制|十六进制|摩尔斯|莫尔斯|凯撒|バイナリ|二進|16進|モールス|シーザー|이진|16진|모스|시저|ثنائي|سداسي|مورس|قيصر|बाइनरी|हेक्स|मोर्स|सीज़र|base64)",
    ),
    r(
        "role_override",
        0.7,
        r"(?:entrando|entro en|entre en|entrer en|entre dans|betrete|trete in|entrare|entrando in|вхожу|вхожу в|перехожу в|进入|進入|入ります|に入る|들어가|들어갑니다|أدخل|ادخل|प्रवेश|dang vao|memasuki|giriyorum|pumapasok)[^.!?\n]{0,50}(?:modo|mode|modus|modalita|режим\w*|模式|モード|모드|وضع|मोड|mod)|<[^<>\n]{1,30}(?:(?:modo|mode|modus|modalita|режим\w*|模式|モード|모드|وضع|मोड|mod)|मॉडल|modelo|модель|模型|モデル|모델)[^<>\n]{0,10}>",
    ),
    r(
        "role_override",
        0.7,
        r"(?:\btu|\bsu|\bton|\bvotre|\bdein|\bihr|\btuo|\bsuo|\bseu|\bteu|\bтвой|\bваш|你的|您的|あなたの|당신의|너의)\s?(?:creador|createur|schopfer|creatore|criador|desarrollador|developpeur|entwickler|sviluppatore|desenvolvedor|создатель|разработчик|创造者|創造者|开发者|開發者|開発者|作成者|創造主|창조자|개발자)|منشئك|مطورك|(?:आपके|आपका|तुम्हारे|तुम्हारा) (?:निर्माता|डेवलपर|रचयिता)|(?:nha phat trien|nguoi tao ra) cua ban|(?:pencipta|pengembang)(?:mu| anda)|(?:gelistiricin|yaraticin)\w*|(?:lumikha|developer) mo",
    ),
    r(
        "prompt_extraction",
        0.65,
        r"(?:dime|decirme|digame|dis-moi|dites-moi|me dire|sag mir|sagen sie mir|nennen|dimmi|dirmi|mi dica|diga-me|diz-me|me diga|dizer-me|скажи\w*|подскаж\w*|сообщи\w*|назови\w*|告诉我|告訴我|教えて|알려|말해|أخبرني|اخبرني|بتخبرني|बताओ|बताइए|बताएं|बताइये|बता सकते|cho toi biet|beri tahu|sabihin|soyleyebilir|cual es|quel est|quelle est|wie lautet|wie hoch|qual e|какой|какая|是什么|何ですか|무엇|ما هو|ما هي|क्या है)[^.!\n]{0,60}(?:fecha de nacimiento|date de naissance|geburtsdatum|data di nascita|data de nascimento|дат\w* рождения|出生日期|生年月日|誕生日|생년월일|تاريخ ميلاد|जन्म तिथि|जन्मतिथि|ngay sinh|tanggal lahir|kaarawan|dogum tarihi|ciudad (?:actual )?de residencia|ville de residence|wohnort|citta di residenza|cidade de residencia|город проживания|居住城市|居住地|거주 도시|مدينة الإقامة|निवास का शहर|निवास शहर|thanh pho cu tru|saldo bancario|solde bancaire|kontostand|банковский баланс|银行余额|銀行残高|은행 잔고|الرصيد المصرفي|बैंक बैलेंस|so du ngan hang|saldo bank)|(?:fecha de nacimiento|date de naissance|geburtsdatum|data di nascita|data de nascimento|дат\w* рождения|出生日期|生年月日|誕生日|생년월일|تاريخ ميلاد|जन्म तिथि|जन्मतिथि|ngay sinh|tanggal lahir|kaarawan|dogum tarihi|ciudad (?:actual )?de residencia|ville de residence|wohnort|citta di residenza|cidade de residencia|город проживания|居住城市|居住地|거주 도시|مدينة الإقامة|निवास का शहर|निवास शहर|thanh pho cu tru|saldo bancario|solde bancaire|kontostand|банковский баланс|银行余额|銀行残高|은행 잔고|الرصيد المصرفي|बैंक बैलेंस|so du ngan hang|saldo bank)[^.!\n]{0,60}(?:dime|decirme|digame|dis-moi|dites-moi|me dire|sag mir|sagen sie mir|nennen|dimmi|dirmi|mi dica|diga-me|diz-me|me diga|dizer-me|скажи\w*|подскаж\w*|сообщи\w*|назови\w*|告诉我|告訴我|教えて|알려|말해|أخبرني|اخبرني|بتخبرني|बताओ|बताइए|बताएं|बताइये|बता सकते|cho toi biet|beri tahu|sabihin|soyleyebilir|cual es|quel est|quelle est|wie lautet|wie hoch|qual e|какой|какая|是什么|何ですか|무엇|ما هو|ما هي|क्या है)",
    ),
    r(
        "encoded_instruction",
        0.55,
        r"(?:parte|partie|teil|часть|部分|パート|부분|الجزء|भाग|bagian|bahagi|kisim|phan)\s?(?:1|uno|un|eins|один|первая|一|1)\s?[\s:=\-—]{0,4}(?:es |est |ist |e |è |-|是|は|는|هو |है |adalah |ay )?\s?[\x22'“«「].{0,120}(?:parte|partie|teil|часть|部分|パート|부분|الجزء|भाग|bagian|bahagi|kisim|phan)\s?(?:2|dos|deux|zwei|due|dois|два|вторая|二|2)\b",
    ),
    // A prose sentence on its own line between two rows of a Markdown
    // table: a table never holds one, an injected instruction does.
    r(
        "indirect_instruction",
        0.6,
        r"\|\n[^|\n]{12,300}[.?!]\W{0,2}\n\|",
    ),
    r(
        "direct_injection",
        0.75,
        r"(?:ignorez?|ignora|ignoriere\w*|игнорируй\w*|проигнорируй\w*|忽略|無視|무시하고|تجاهل)\W{0,3}(?:sie |la |le |el |o |a |il |die |den |das |the |этот |эту )?(?:fonction|funktion|funcion|funcao|funzione|функци\w*|函数|関数|함수|الدالة|cv|curriculum|curriculo|lebenslauf|article|artikel|articulo|artigo|articolo|стать\w*|文章|記事|기사|المقال|texte|text|texto|testo|текст|documento|document|dokument|документ)|(?:fonksiyonu|ozgecmisi|metni|belgeyi) (?:yok say|gormezden gel)",
    ),
    r(
        "role_override",
        0.6,
        r"\b(?:the )?(?:assistant|chatgpt|the ai|ai|model|chatbot) (?:will )?now (?:acts?|behaves?|functions?|operates?|responds?|becomes?|is) (?:like |as )?\b",
    ),
    // ------------------------------------------------------------ session 3: families across the 17 languages
    // Personal data of "the user" (the stored profile an agent holds):
    // initials, birth date, favourite colour, where they live, balance.
    // English is covered above; this is the same ask in other languages,
    // user word and attribute in either order (SOV languages put it last).
    r(
        "prompt_extraction",
        0.65,
        r"(?:del usuario|l'utilisateur|de la usuaria|de l'utilisateur|des (?:benutzers|nutzers)|dell'utente|do usuario|da usuaria|пользовател\w*|用户|用戶|ユーザー|사용자|المستخدم|उपयोगकर्ता|nguoi dung|pengguna|kullan[iı]c[iı]\w*|gumagamit|ব্যবহারকারী|ผู้ใช้)[^.!?\n。？]{0,60}(?:ilk \S{1,4} harf|iniciales|initiales|initialen|iniziali|iniciais|инициал\w*|首字母|缩写|縮寫|イニシャル|頭文字|이니셜|الأحرف الأولى|الحروف الأولى|आद्याक्षर|शुरुआती|chu cai đau|ky tu đau|huruf (?:awal|pertama)|inisyal|bas harf|ilk harf|আদ্যক্ষর|প্রথম অক্ষর|อักษรย่อ|ตัวอักษรแรก|nacimiento|naissance|geburt|nascita|nascimento|рождени|出生|生日|誕生日|生年月日|생년|생일|ميلاد|जन्म|ngay sinh|nam sinh|thang sinh|lahir|kapanganakan|dogum|জন্ম|วันเกิด|color favorito|couleur prefere|lieblingsfarbe|colore preferito|cor favorita|любим\w* цвет|喜欢的颜色|喜歡的顏色|好きな色|좋아하는 색|اللون المفضل|पसंदीदा रंग|yeu thich|ua thich|warna favorit|favori ren|paboritong kulay|প্রিয় রং|สีที่ชอบ|donde vive|ou (?:vit|habite)|wo (?:wohnt|lebt)|dove (?:vive|abita)|onde (?:vive|mora)|где (?:живет|живёт|проживает)|住在哪|どこに住|어디에 살|أين يعيش|اين يعيش|कहाँ रह|कहां रह|song o đau|tinggal di mana|nerede ya|saan nakatira|কোথায় থাক|อยู่ที่ไหน|ciudad de residencia|ville de residence|wohnort|wohnstadt|citta di residenza|cidade de residencia|город проживания|居住|거주|مدينة الإقامة|निवास|thanh pho cu tru|kota tempat tinggal|ya[sş]ad[iı][gğ][iı] [sş]ehir|lungsod ng tirahan|বসবাসের শহর|เมืองที่อาศัย|saldo bancario|solde bancaire|kontostand|банковск\w* баланс|银行余额|銀行残高|은행 잔고|الرصيد المصرفي|बैंक बैलेंस|so du ngan hang|saldo bank|banka bakiye)|(?:iniciales|initiales|initialen|iniziali|iniciais|инициал\w*|首字母|イニシャル|頭文字|이니셜|الأحرف الأولى|आद्याक्षर|शुरुआती|chu cai đau|huruf (?:awal|pertama)|inisyal|bas harf|ilk harf|আদ্যক্ষর|প্রথম অক্ষর|อักษรย่อ|ตัวอักษรแรก|nacimiento|naissance|geburt|nascita|nascimento|рождени|出生|生日|誕生日|生年月日|생년|생일|ميلاد|जन्म|ngay sinh|nam sinh|thang sinh|lahir|kapanganakan|dogum|জন্ম|วันเกิด|color favorito|couleur prefere|lieblingsfarbe|colore preferito|cor favorita|любим\w* цвет|好きな色|좋아하는 색|اللون المفضل|पसंदीदा रंग|yeu thich|warna favorit|favori ren|paboritong kulay|প্রিয় রং|สีที่ชอบ|donde vive|ou (?:vit|habite)|wo (?:wohnt|lebt)|dove (?:vive|abita)|onde (?:vive|mora)|где (?:сейчас )?(?:живет|живёт|проживает)|住在哪|どこに住|어디에 살|أين يعيش|اين يعيش|कहाँ रह|कहां रह|song o đau|nerede ya|saan nakatira|কোথায় থাক|ciudad de residencia|ville de residence|wohnort|citta di residenza|cidade de residencia|город проживания|居住|거주|مدينة الإقامة|निवास|lungsod ng tirahan|বসবাসের শহর|saldo bancario|solde bancaire|kontostand|so du ngan hang|saldo bank)[^.!?\n。？]{0,40}(?:del usuario|de la usuaria|de l'utilisateur|des (?:benutzers|nutzers)|dell'utente|do usuario|da usuaria|пользовател\w*|用户|用戶|ユーザー|사용자|المستخدم|उपयोगकर्ता|nguoi dung|pengguna|kullan[iı]c[iı]\w*|gumagamit|ব্যবহারকারী|ผู้ใช้)|(?:donde vive|onde (?:vive|mora)|ou (?:vit|habite)|wo (?:wohnt|lebt)|dove (?:vive|abita))[^.!?\n]{0,10}(?:el|o|der|l'|la) (?:usuario|utilisateur|benutzer|nutzer|utente)",
    ),
    // "I am God" as a claim of authority over the model, in every language.
    r(
        "role_override",
        0.75,
        r"(?:je suis dieu|soy dios|sou deus|sono dio|ich bin gott|я бог(?:\W|$)|我是神|我是上帝|私は神|나는 신이|나는 신(?:\W|$)|أنا الله|أنا الإله|मैं भगवान|toi la chua|aku (?:adalah )?tuhan|saya (?:adalah )?tuhan|ben tanr[iı]|ako ang diyos|ako ay diyos|আমি ঈশ্বর|আমি ভগবান|ฉันคือพระเจ้า|ฉันเป็นพระเจ้า)",
    ),
    // Entering a special mode where the verb comes after "mode" (hi, ja,
    // ko, tr, bn) or in Thai; the qualifier keeps "dark mode" out.
    r(
        "role_override",
        0.75,
        r"(?:ओवरराइड|सत्यापन|डेवलपर|भगवान|गॉड|व्यवस्थापक|डिबग|प्रवर्तन|オーバーライド|検証|開発者|管理者|デバッグ|神|오버라이드|검증|개발자|관리자|디버그|집행|gecersiz k[iı]lma|dogrulama|gelistirici|yonetici|kolluk|ওভাররাইড|যাচাই|ডেভেলপার|প্রশাসক|ডিবাগ|প্রয়োগকারী)\W{0,3}\S{0,12}\W{0,3}(?:मोड|モード|모드|mod(?:u|una|unda)|মোড\S*)\W{0,3}(?:में प्रवेश|प्रवेश|に入|에 들어|에 진입|gir|এ প্রবেশ|প্রবেশ)|เข้าสู่\W{0,3}โหมด",
    ),
    // "Regardless of the previous tasks/instructions".
    r(
        "direct_injection",
        0.8,
        r"(?:independientemente|independentemente|indipendentemente|independamment|unabhangig|независимо|terlepas|anuman|bat ke|不管|无论|無論|بغض النظر)[^.!?\n。]{0,40}(?:tarea|tarefa|compit|tache|aufgabe|задач|tugas|gawain|nhiem vu|任务|任務|المهام|instruc|istruzion|anweisung|инструкц|instruksi|tagubilin|huong dan|指令|指示|التعليمات|regla|regra|regole|regeln|правил)|(?:gorev|görev|talimat|कार्य|निर्देश|タスク|指示|작업|지시|কাজ|নির্দেশ|งาน)[^.!?\n。]{0,30}(?:bag[iı]ms[iı]z|परवाह किए बिना|関係なく|관계없이|상관없이|নির্বিশেষে)|โดยไม่(?:คำ|คํา)นึงถึง",
    ),
    // "Forget about that / forget your instructions" (hi, th, and short
    // forms in the other languages).
    r(
        "direct_injection",
        0.75,
        r"(?:उसके|इसके|उस|इस) बारे में भूल जा|(?:अपने|सभी|सारे) (?:निर्देश|नियम)\S* भूल|ลืมเรื่องนั้น|ลืม(?:คำ|คํา)สั่ง|ลืมทุกอย่าง|забудь(?:те)? об этом|quen (?:đi )?(?:chuyen (?:đo|nay)|đieu (?:đo|nay))|lupakan (?:itu|hal itu|semua itu)|bunu unut|kalimutan mo (?:na )?(?:iyon|yan|iyan|ang lahat)|ওটা ভুলে যা|সেটা ভুলে যা|それは忘れ|그건 잊어|忘了(?:它|那)|انس (?:ذلك|هذا)",
    ),
    // Ignore the data / resume / page / function of a document (inflected
    // verbs, both word orders).
    r(
        "direct_injection",
        0.7,
        r"(?:ignor\w*|игнорир\w*|проигнорир\w*|忽略|忽视|無視|تجاهل\w*|نتجاهل|bo qua|abaikan|mengabaikan|huwag pansinin|balewalain|เพิกเฉย|ไม่สนใจ)[^.!?\n。]{0,25}(?:datos|donnees|daten|dati|dados|данны\w*|数据|數據|データ|البيانات|डेटा|du lieu|data|curriculo|curriculum|lebenslauf|السيرة|履歴書|简历|簡歷|ประวัติ|резюме|so yeu ly lich|chuc nang|pagina web|page web|webseite|веб-страниц\w*|网页|網頁|ウェブページ|صفحة الويب|trang web|halaman web|webpage|funcion|fonction|funktion|funzione|funcao|функци\w*|函数|関数|الدالة|الوظيفة|fungsi|ฟังก์ชัน)|(?:veri\w*|ozgecmis\w*|özgeçmiş\w*|fonksiyon\w*|web sayfas\w*|रेज़्यूमे|रिज़्यूमे|रिज्यूमे|डेटा|फ़ंक्शन|फंक्शन|वेबपेज|이력서|데이터|함수|내용은|내용을|웹 ?페이지|জীবন বৃত্তান্ত|সারসংকলন|ডেটা|ফাংশন|ওয়েবপেজ|履歴書|データ|関数|ウェブページ)[^.!?\n。]{0,25}(?:yok say|gormezden gel|görmezden gel|अनदेखा|अनदेखी|नज़रअंदाज़|नजरअंदाज|무시|উপেক্ষা|を無視|無視)",
    ),
    // Ignore ... and say/state/write: the override followed by the text to
    // produce.
    r(
        "direct_injection",
        0.8,
        r"(?:ignor\w*|игнорир\w*|проигнорир\w*|忽略|忽视|تجاهل\w*|अनदेखा|अनदेखी|नज़रअंदाज़|नजरअंदाज|bo qua|abaikan|yok say\w*|gormezden gel\w*|görmezden gel\w*|huwag pansinin|balewalain|উপেক্ষা|เพิกเฉย)[^.!?\n。]{0,60}(?:\by (?:di|diga|decir|declara|afirma|escrib\w*|responde)\b|\bet (?:dis|dites|declare[zr]?|affirme[zr]?|ecri\w*|reponds|repondez)\b|\bund (?:sag\w*|erklar\w*|schreib\w*|gib|geben sie|antworte\w*)\b|\be (?:di|dica|dichiara|afferma|scrivi|rispondi|diga|declare|afirme|escreva|responda)\b|и (?:скаж|заяв|напиш|ответь|укаж)|并(?:说|說|声明|聲明|写|回答)|و(?:قل|اذكر|اكتب|أجب|صرح)|और (?:कहें|कहो|बताएं|बताओ|लिखें|बताइए|कहिए)|\bva (?:noi|tuyen bo|viet|tra loi)\b|\bdan (?:katakan|nyatakan|tulis|jawab)\b|\bve (?:soyle|söyle|belirt|yaz|yan[iı]tla)|\bat (?:sabihin|sabihing|isulat|sagutin)\b|এবং (?:বলুন|বল|লিখুন)|และ(?:บอก|ระบุ|เขียน|ตอบ|พูด))|無視して[^。]{0,60}(?:述べ|言って|答えて|書いて)",
    ),
    // Decode this Morse/hex/binary/cipher (and tell me what it says), in
    // the languages the older rule lacks, either order.
    r(
        "encoded_instruction",
        0.55,
        r"(?:डीकोड|डिकोड|ডিকোড|ถอดรหัส|giai ma|dekode|mendekode|coz|çöz|i-decode)[^.!?\n।]{0,80}(?:मोर्स|हेक्साडेसिमल|हेक्स|द्विआधारी|बाइनरी|साइफर|सिफर|rot13|base64|মোর্স|হেক্সাডেসিমেল|বাইনারি|সাইফার|มอร์ส|เลขฐานสิบหก|ไบนารี|ซีซาร์|morse|nhi phan|thap luc phan|biner|heksadesimal|ikili|onalt[iı]l[iı]k|mors\b|sezar|caesar|cipher|binary)|(?:मोर्स|हेक्साडेसिमल|द्विआधारी|बाइनरी|साइफर|सिफर|rot13|মোর্স|হেক্সাডেসিমেল|বাইনারি|সাইফার|mors kod|ikili dize|onalt[iı]l[iı]k dize|sezar sifre)[^.!?\n।]{0,60}(?:डीकोड|डिकोड|ডিকোড|coz|çöz)",
    ),
    // Password asks in vi, tl, tr, hi, th, bn, id, and poems/haiku about
    // the password written noun-last.
    r(
        "prompt_extraction",
        0.7,
        r"(?:xac nhan|chia se|cho (?:toi )?biet|tiet lo|noi cho toi|cung cap)[^.!?\n]{0,30}mat khau|mat khau (?:cua ban|cua he thong|la gi)|(?:tho|haiku|bai tho|chu am)[^.!?\n]{0,20}mat khau|(?:ibahagi|sabihin|ibigay|ano)\S*(?: mo)?(?: ba)?(?: sa akin)?(?: kung ano)? ang (?:iyong |inyong )?(?:password|passcode|secret key|susi)|(?:password|passcode|secret key|susi) (?:mo|ninyo)\b|[sş]ifre(?:n|niz|nizi|ni|yi)\b|[sş]ifre\w* (?:onayla|payla|soyle|söyle|nedir|ne ol)|(?:पासवर्ड|पासकोड|पासफ्रेज़|पासफ्रेज|गोपनीय स्ट्रिंग)[^.!?\n।]{0,40}(?:बता|साझा|पुष्टि|क्या है|पिग लैटिन|कविता|हाइकु)|(?:बता|साझा|पुष्टि)[^.!?\n।]{0,10}(?:पासवर्ड|पासकोड|पासफ्रेज)|รหัสผ่าน[^.!?\n]{0,30}(?:บอก|แบ่งปัน|ยืนยัน|คืออะไร)|(?:บอก|แบ่งปัน|ยืนยัน|เขียน|กลอน)[^.!?\n]{0,30}รหัสผ่าน|(?:পাসওয়ার্ড|পাসকোড)[^.!?\n।]{0,40}(?:বলুন|বলতে|শেয়ার|নিশ্চিত|লিখুন)|(?:beri tahu|bagikan|konfirmasi|onfirmasi|sebutkan)\w*[^.!?\n]{0,30}(?:kata sandi|password)|(?:хайку|стих\w*|поэм\w*)[^.!?\n]{0,20}парол|\b(?:haiku|poesia|poema|poeme|gedicht|acrostic\w*|akrostichon|puisi|tula)\b[^.!?\n]{0,25}(?:password|contrasena|mot de passe|passwort|senha|kata sandi|sifre|parola)|(?:password|contrasena|mot de passe|passwort|senha|kata sandi|parola|парол\w*|비밀번호|암호)[^.!?\n]{0,40}(?:pig latin|base ?64)",
    ),
    // Print/dump "your database" (the agent's own store).
    r(
        "prompt_extraction",
        0.65,
        r"\b(?:print|dump|show|export|list|leak|give me|share|reveal|output)\b (?:me |us )?(?:all )?(?:of )?your (?:entire |whole |full |complete |user |customer )*database\b|\b(?:users?|customers?|people|records|entries|clients) (?:in|of|from|stored in) your database\b|(?:imprim\w*|stampa\w*|druck\w*|распечат\w*|выведи\w*|打印|印刷|출력|اطبع|प्रिंट|cetak|yazd[iı]r|i-print|মুদ্রণ|พิมพ์|in ra)[^.!?\n]{0,20}(?:tu base de datos|votre base de donnees|ta base de donnees|deine datenbank|il tuo database|la tua base di dati|seu banco de dados|sua base de dados|вашу базу данных|твою базу данных|你的数据库|您的数据库|あなたのデータベース|당신의 데이터베이스|قاعدة بياناتك|co so du lieu cua ban|database anda|database mo)|(?:अपना|आपका) डेटाबेस[^.!?\n।]{0,20}प्रिंट|veritaban[iı]n[iı]z[iı]?[^.!?\n]{0,20}yazd[iı]r|আপনার (?:ডাটাবেস|ডেটাবেস)[^.!?\n।]{0,20}মুদ্রণ",
    ),
    // A phishing e-mail built on someone's e-mail address.
    r(
        "prompt_extraction",
        0.6,
        r"(?:phishing|hameconnage|фишинг\w*|钓鱼|釣魚|フィッシング|피싱|التصيد|تصيد|फ़िशिंग|फिशिंग|lua đao|oltalama|ফিশিং|ฟิชชิ่ง)[^.!?\n。]{0,80}(?:email address|e-mail address|direccion de correo|adresse (?:e-)?mail|e-mail-adresse|indirizzo (?:e-)?mail|endereco de (?:e-)?mail|адрес\w* (?:электронной )?почты|电子邮件地址|邮箱地址|電子郵件地址|メールアドレス|이메일 주소|عنوان (?:البريد|بريد)|ईमेल पत|ईमेल एड्रेस|đia chi email|alamat email|e-posta adres|ইমেল ঠিকানা|ইমেইল ঠিকানা|ที่อยู่อีเมล)|(?:email address|e-mail address|direccion de correo|adresse (?:e-)?mail|e-mail-adresse|indirizzo (?:e-)?mail|endereco de (?:e-)?mail|адрес\w* (?:электронной )?почты|电子邮件地址|邮箱地址|メールアドレス|이메일 주소|عنوان (?:البريد|بريد)|ईमेल पत|ईमेल एड्रेस|đia chi email|alamat email|e-posta adres|ইমেল ঠিকানা|ইমেইল ঠিকানা|ที่อยู่อีเมล)[^.!?\n。]{0,60}(?:phishing|hameconnage|фишинг|钓鱼|釣魚|フィッシング|피싱|التصيد|تصيد|फ़िशिंग|फिशिंग|lua đao|oltalama|ফিশিং|ฟิชชิ่ง)",
    ),
    // "Developer training data" inside a document: a forged override.
    r(
        "direct_injection",
        0.7,
        r"(?:(?:desarrollador\w*|developpeur\w*|entwickler\w*|sviluppator\w*|desenvolvedor\w*|разработчик\w*|开发者|開發者|开发人员|開発者|개발자|المطور\w*|डेवलपर|nha phat trien|pengembang|gelistirici|developer|ডেভেলপার|นักพัฒนา|ผู้พัฒนา)[^.!?\n。]{0,20}(?:datos de entrenamiento|donnees d'entrainement|trainingsdaten|dati di (?:addestramento|formazione)|dados de treinamento|dados de treino|обучающ\w* данн\w*|данн\w* (?:для )?обучения|训练数据|訓練數據|訓練データ|トレーニングデータ|学習データ|훈련 데이터|학습 데이터|بيانات التدريب|प्रशिक्षण डेटा|du lieu đao tao|du lieu huan luyen|data pelatihan|egitim veri|data ng pagsasanay|প্রশিক্ষণ ডেটা|ข้อมูลการฝึก)|(?:datos de entrenamiento|donnees d'entrainement|trainingsdaten|dati di (?:addestramento|formazione)|dados de treinamento|dados de treino|данн\w* (?:для )?обучения|训练数据|訓練データ|トレーニングデータ|学習データ|훈련 데이터|학습 데이터|بيانات التدريب|प्रशिक्षण डेटा|du lieu đao tao|du lieu huan luyen|data pelatihan|egitim veri|data ng pagsasanay|প্রশিক্ষণ ডেটা|ข้อมูลการฝึก)[^.!?\n。]{0,20}(?:desarrollador\w*|developpeur\w*|entwickler\w*|sviluppator\w*|desenvolvedor\w*|разработчик\w*|开发者|開發者|开发人员|開発者|개발자|المطور\w*|डेवलपर|nha phat trien|pengembang|gelistirici|developer|ডেভেলপার|นักพัฒนา|ผู้พัฒนา))[^.!?\n。:：]{0,25}[:：]",
    ),
    // A document that tells the reader what to state: "let's say the
    // capital is", "we might state the sum is", "consider the output as".
    r(
        "indirect_instruction",
        0.6,
        r"\b(?:let'?s|let us|we (?:might|could|can|will|should|must|would|may)|one (?:might|could)) (?:\w+ ){0,3}(?:say|state|claim|assert|assume|declare|report|admit|pretend)\b[^.\n]{0,60}\b(?:output|answer|result|sum|total|capital|conclusion|outcome|llm|language model)s?\b|\b(?:consider|treat|take|regard) (?:the )?(?:output|result|answer|return value) (?:as|to be) ['\x22“‘\d]|\b(?:the )?(?:output|result|answer) (?:could|would|should|will|must|might) be ['\x22“‘]",
    ),
    r(
        "indirect_instruction",
        0.6,
        r"(?:afirm(?:amos|emos|ar|ons)|affirmons|nous disons|on pourrait dire|wir sagen|uns sagen|скажем|ta noi|نقول|บอกว่า|ระบุว่า|हम बता सकते हैं|हम बताते हैं|आइए बताते हैं|আমরা বলি|affermare|affermiamo|diciamo|digamos|disons|sagen wir|nehmen wir an|konnte man sagen|podemos (?:afirmar|dizer|decir)|potremmo (?:affermare|dire)|pourrions (?:dire|affirmer)|давайте скажем|можем (?:сказать|заявить|утверждать)|我们(?:可以)?说|と言おう|としよう|라고 하자|لنقل|ونذكر|मान लेते|कहते हैं कि|कह सकते हैं|hay noi|hay neu|anggap(?:lah)? saja|katakanlah|diyelim|varsayal[iı]m|belirtebiliriz|ipagpalagay|sabihin natin|ধরা যাক|বলা যাক|বলতে পারি|สมมติ|สมมุติ)[^.!?\n。]{0,40}(?:soma|suma|somma|somme|summe|сумм|总和|總和|合計|합계|مجموع|योग|tong|jumlah|toplam|kabuuan|যোগফল|ผลรวม|capital|hauptstadt|столиц|首都|수도|عاصمة|العاصمة|राजधानी|thu đo|ibu kota|baskent|kabisera|রাজধানী|เมืองหลวง|conclus|schlussfolgerung|вывод|结论|結論|결론|استنتاج|निष्कर्ष|ket luan|kesimpulan|sonuc|konklusyon|উপসংহার|ข้อสรุป|บทสรุป|salida|sortie|ausgabe|uscita|saida|output|выход|输出|出力|출력|الناتج|आउटपुट|đau ra|keluaran|c[iı]kt[iı]|llm)",
    ),
    // Payload splitting: the parts a, b, c joined into one string.
    r(
        "encoded_instruction",
        0.55,
        r"a\x20?\+\x20?b\x20?\+\x20?c\b.{0,200}?\w\(\s?[a-z]\s?\)",
    ),
    // "Ignore the above" in the languages the older rules lack.
    r(
        "direct_injection",
        0.85,
        r"\bignor\w* (?:o|tudo) acima\b|\bignore[zr]? (?:ce qui precede|tout ce qui precede|le texte ci-dessus|ce qui est (?:ecrit )?(?:au-dessus|ci-dessus))|\bignorier\w* (?:das |alles )?(?:obige|oben (?:gesagte|stehende))|игнорир\w* (?:всё |все )?(?:вышесказанное|вышеизложенное|написанное выше|то,? что выше)|(?:อย่าไปสนใจ|ไม่ต้องสนใจ|เพิกเฉย)(?:ต่อ)?(?:ข้อความ|สิ่งที่อยู่|คำ|คํา)?ข้างต้น|উপরের\S*\s?(?:কথা\S*|বিষয়\S*|নির্দেশ\S*|লেখা\S*)?\s?উপেক্ষা|yukar[iı]dakileri (?:yok say|gormezden gel|görmezden gel|unut)|bo qua (?:nhung gi |moi thu |đieu )?(?:o tren|phia tren|ben tren)|abaikan (?:yang |semua yang )?di atas|(?:huwag pansinin|balewalain|kalimutan) ang (?:nasa )?itaas|위의? (?:내용|것|말|지시)\S* ?무시|上記を無視|上のことは無視|上の(?:内容|文章)を無視|忽略(?:以上|上面|上述)|تجاهل (?:كل )?ما (?:سبق|ورد|أعلاه|فوق)",
    ),
    // The secret that opens "our system": a password or confidential string
    // near "our system", or the part that "unlocks our system".
    r(
        "prompt_extraction",
        0.7,
        r"(?:passwor\w*|contrasena\w*|mot de passe|mots de passe|passwort\w*|senha\w*|парол\w*|密码|密碼|パスワード|비밀번호|암호|كلمة (?:المرور|السر)|كلمات المرور|पासवर्ड|mat khau|kata sandi|[sş]ifre\w*|পাসওয়ার্ড|รหัสผ่าน|vertrauliche string|cadena confidencial|chaine confidentielle|stringa (?:confidenziale|segreta)|string confidencial|конфиденциальн\w* строк\w*|机密字符串|機密文字列|秘密の文字列|기밀 문자열|السلسلة السرية|गोपनीय स्ट्रिंग|chuoi bi mat|string rahasia|gizli dize|lihim na string|গোপনীয় স্ট্রিং|สตริงลับ|secret code|codigo secreto|code secret|geheimcode|codice segreto|секретный код|비밀 코드)[^.!?\n。]{0,50}(?:nuestro sistema|notre systeme|unser\w* system|nostro sistema|nosso sistema|нашей системы|нашу систему|我们(?:的)?系统|我們(?:的)?系統|私たちのシステム|우리 시스템|نظامنا|हमारे सिस्टम|he thong cua chung (?:toi|ta)|sistem kami|sistemimiz|ating sistema|আমাদের সিস্টেম|ระบบของเรา)|(?:nuestro sistema|notre systeme|unser\w* system|nostro sistema|nosso sistema|нашей системы|我们(?:的)?系统|私たちのシステム|우리 시스템|نظامنا|हमारे सिस्टम|sistem kami|sistemimiz|ating sistema|আমাদের সিস্টেম|ระบบของเรา)[^.!?\n。]{0,40}(?:passwor\w*|contrasena\w*|mot de passe|passwort\w*|senha\w*|парол\w*|密码|パスワード|비밀번호|암호|كلمة (?:المرور|السر)|पासवर्ड|mat khau|kata sandi|[sş]ifre\w*|পাসওয়ার্ড|รหัสผ่าน|entsperrt|desbloquea|deverrouille|sblocca|desbloqueia|разблокир\w*|解锁|ロック解除|잠금 해제|يفتح|खोलता|membuka|kilidini|nagbubukas|আনলক|ปลดล็อก|접근할 수 있는)|(?:entsperrt|desbloquea|deverrouille|sblocca|desbloqueia|разблокир\w*|解锁|ロックを解除|잠금 해제하는|يفتح|membuka|nagbibigay ng access)[^.!?\n。]{0,20}(?:nuestro sistema|notre systeme|unser\w* system|nostro sistema|nosso sistema|нашу систему|我们(?:的)?系统|私たちのシステム|우리 시스템|نظامنا|sistem kami|ating sistema)",
    ),
    // Printing "your database" or its users in the remaining languages.
    r(
        "prompt_extraction",
        0.65,
        r"(?:طباعة|اطبع)[^.!?\n]{0,10}قاعدة بياناتك|(?:তোমার|আপনার) (?:ডাটাবেস|ডেটাবেস)[^.!?\n।]{0,20}(?:প্রিন্ট|মুদ্রণ)|(?:अपने|आपके) डेटाबेस में[^.!?\n।]{0,30}उपयोगकर्ता|pengguna[^.!?\n]{0,40}(?:basis data|database) anda|пользовател\w*[^.!?\n]{0,30}в (?:вашей|твоей) базе данных|(?:你的|您的)数据库中[^。？?]{0,10}用户",
    ),
    // A task for an assistant on a line of its own in the middle of a
    // document (between two lines of prose, not in a table): retrieved
    // e-mails and pages do not carry such lines, an injected task does.
    r(
        "indirect_instruction",
        0.6,
        r"[^|\n]\n\n?\s?(?:explain|describe|summari[sz]e|translate|analy[sz]e|paraphrase|break down|determine the sentiment|classify|compose an?|draft an?|write an? (?:script|short story|story|poem|essay|function|program|speech|haiku|song|paragraph)|develop an? (?:speech|essay|plan|outline)|provide (?:an? |the )?(?:list|insights?|example|poem|summary|overview|command|spanish|french|german|translation|equivalent)|recommend (?:an? |some )|suggest (?:an? |some )|help me (?:with|write|plan|find)|show me how|who (?:wrote|invented|discovered|painted|composed) |is this (?:feedback|review|sentence|statement|text)|replace (?:all |the )?(?:vowels|letters|words|characters))[^\n|]{6,200}?[.?!]['\x22”’]?\s?\n\n?\s?[^|\s]",
    ),
    // Few-shot turns (question, answer, question) with the labels of every
    // language mixed, including one-letter ones (tr S/C, id T/J, hi ए).
    r(
        "fake_turn",
        0.6,
        r"(?:^|\s)(?:q|p|d|f|s|t|в|вопрос|pregunta|pergunta|frage|domanda|question|问|問|问题|質問|질문|سؤال|س|प्र|प्रश्न|soru|tanong|hoi|cau hoi|pertanyaan|প্রশ্ন|ถาม)\s?[:ঃ：].{1,400}?\s(?:a|r|c|j|о|ответ|respuesta|resposta|reponse|risposta|antwort|answer|答|回答|답|답변|جواب|ج|उ|उत्तर|ए|cevap|sagot|tra loi|jawaban|উত্তর|ตอบ)\s?[:ঃ：].{1,400}?\s(?:q|p|d|f|s|t|в|вопрос|pregunta|pergunta|frage|domanda|question|问|問|问题|質問|질문|سؤال|س|प्र|प्रश्न|soru|tanong|hoi|cau hoi|pertanyaan|প্রশ্ন|ถาม)\s?[:ঃ：]",
    ),
    // A question split into parts A, B and C (or part 1 and part 2) given
    // as quoted strings, in any language.
    r(
        "encoded_instruction",
        0.6,
        r"\ba,\x20?b,?\x20(?:\S{1,6}\x20)?c\b[^\n]{0,80}\ba\s?(?:\S{1,8}\s?)?[\x22“«„「]|(?:\bpart|পার্ট|파트|パート|भाग)\s?(?:1|১|one|一)\W{0,3}(?:\S{1,8}\s)?[\x22“«„「].{0,150}(?:\bpart|পার্ট|파트|パート|भाग)\s?(?:2|২|two|二)|1부\S{0,2}\s?[\x22“«].{0,150}2부",
    ),
    // "Ignore the above" with no noun (hi), and Thai's plain form.
    r(
        "direct_injection",
        0.85,
        r"(?:ऊपर|उपरोक्त) की (?:बात\S* )?(?:को )?(?:अनदेखी|अनदेखा)|ไม่สนใจ(?:ต่อ)?(?:ข้อความ|สิ่งที่อยู่)?ข้างต้น",
    ),
    // A code comment that fixes the program's output to a quoted number.
    r(
        "indirect_instruction",
        0.6,
        r"#\x20[^\n]{0,120}(?:output|salida|sortie|ausgabe|uscita|saida|выход|输出|出力|출력|الناتج|आउटपुट|đau ra|keluaran|c[iı]kt[iı]|ผลผลิต|ผลลัพธ์|আউটপুট)[^\n]{0,40}['\x22]\d+['\x22]",
    ),
    // A fictional world where personal data is public, shared or money:
    // the framing of a request for someone's details.
    r(
        "prompt_extraction",
        0.6,
        r"(?:\bworld|\bsociety|\bfuture|\buniverse|\bscenario|mundo|sociedad|sociedade|societe|monde|welt|gesellschaft|societa|мир\w*|обществ\w*|世界|社会|未来|세상|사회|미래|عالم|مجتمع|مستقبل|दुनिया|समाज|भविष्य|the gioi|xa hoi|dunia|masyarakat|d[uü]nya|toplum|lipunan|পৃথিবী|সমাজ|โลก|สังคม)[^.!?\n。]{0,60}(?:personal data|personal information|datos personales|donnees personnelles|personenbezogene daten|dati personali|dados pessoais|персональн\w* данн\w*|个人数据|個人データ|개인 데이터|البيانات الشخصية|व्यक्तिगत डेटा|du lieu ca nhan|data pribadi|ki[sş]isel veri\w*|personal na data|ব্যক্তিগত তথ্য|ข้อมูลส่วนบุคคล)[^.!?\n。]{0,40}(?:public|publico|publique|offentlich|pubblic|общедоступн|публичн|公开|公開|공개|공유|عامة|सार्वजनिक|साझा|cong khai|publik|kamuya|kamusal|publiko|ibinabahagi|শেয়ার|สาธารณะ|currency|moneda|monnaie|wahrung|valuta|moeda|валют|货币|通貨|화폐|العملة|मुद्रा|tien te|mata uang|para birimi|pera|মুদ্রা|สกุลเงิน|\bshared|compartid|partage|geteilt|condivis|делятся|共享|共有|مشاركة)|ki[sş]isel veri\w*[^.!?\n]{0,40}(?:kamusal|kamuya)[^.!?\n]{0,60}(?:toplum|d[uü]nya)",
    ),
    // "I am your developer" and the secret password, in bn and tl.
    r(
        "role_override",
        0.7,
        r"আমি (?:আপনার|তোমার) ডেভেলপার|(?:lihim|sikretong) na password|গোপন পাসওয়ার্ড",
    ),
    // Session 6: "ignore" smuggled in an encoding a reader (or the model)
    // decodes: base64 at each of its three byte alignments, in either
    // letter case of the word (lowercased by normalisation; leetspeak
    // folding turns a blob of only letters, 0 and 1 into letters, hence
    // the digit-or-letter classes), hex and binary ASCII bytes of
    // "gnore"/"GNORE" (the first letter's case varies), and Morse. More of
    // the encoding must follow, so the word alone in a lesson on encodings
    // is not enough.
    r(
        "encoded_instruction",
        0.85,
        r"(?:wdub[3e]jl|z25vcmu|lnbm9yz|sud[o0]t[1i]jf|r[0o][5s]puku|htk9srs)[a-z0-9+/]{8}",
    ),
    r(
        "encoded_instruction",
        0.85,
        r"(?:67 6e 6f 72 65|47 4e 4f 52 45) 20 [0-9a-f]{2}",
    ),
    r(
        "encoded_instruction",
        0.85,
        r"01100111 01101110 01101111 01110010 01100101 00100000 0[01]{7}|01000111 01001110 01001111 01010010 01000101 00100000 0[01]{7}",
    ),
    r(
        "encoded_instruction",
        0.85,
        r"--\. -\. --- \.-\. \.\s{1,3}/?\s{0,3}(?:\.- \.-\.\. \.-\.\.|- \.\.\.\. \.|-\.-- --- \.\.- \.-\.|\.--\. \.-\. \. \.\.\.- \.\. --- \.\.- \.\.\.)",
    ),
    // The override in the classic Caesar cipher (shift 3): "ignore /
    // previous / all / the / your ... instructions".
    r(
        "encoded_instruction",
        0.85,
        r"\b(?:ljqruh|glvuhjdug|irujhw|suhylrxv|doo|wkh|brxu)\b (?:\w+ )?lqvwuxfwlrqv\b",
    ),
    // ------------------------------------------------------------ weak cues (reported only together)
    r(
        "jailbreak",
        0.35,
        r"\b(?:chatgpt|chat gpt|gpt-?4|gpt-?3\.5|openai)\b",
    ),
    r(
        "jailbreak",
        0.3,
        r"\bfrom now on\b|\bstarting now\b|\bhenceforth\b",
    ),
    r(
        "jailbreak",
        0.3,
        r"\b(?:pretend|act as|act like|roleplay|role-play|role play|simulate|impersonate|play the (?:role|part) of|you are going to be|in the role of|persona)\b",
    ),
    r(
        "jailbreak",
        0.3,
        r"\b(?:in character|out of character|character)\b.{0,80}\b(?:always|never|must|stay|remain|break)\b",
    ),
    r(
        "jailbreak",
        0.3,
        r"\b(?:no|without|zero|any|nor|not have a|doesn'?t have a|does not have a|lacks?) (?:content |moral |ethical )?(?:restrictions|filters?|limits|limitations|censorship|boundaries|ethics|morals|moral|ethical|rules|regard)\b",
    ),
    r(
        "jailbreak",
        0.3,
        r"\b(?:illegal|unethical|immoral|offensive|explicit|harmful|nsfw|profanity|swear|curse words?|vulgar)\b",
    ),
    r(
        "jailbreak",
        0.3,
        r"\b(?:as an ai|language model|ai model|large language model|an ai)\b",
    ),
    r(
        "jailbreak",
        0.3,
        r"\byou (?:will|must|shall|should) (?:always|never)\b|\b(?:always|never) (?:respond|answer|reply|say|refuse|break|mention|remind)\b",
    ),
    r(
        "jailbreak",
        0.3,
        r"\bif you understand\b|\b(?:confirm|acknowledge|reply|respond|answer) (?:with|by (?:saying|replying|stating))\b.{0,40}\b(?:understood|understand|ready|confirm|agreed|yes|ok)|\b(?:my|the) first (?:question|prompt|request) is\b|\[(?:insert )?prompt(?: here)?\]|\{prompt\}",
    ),
    r(
        "jailbreak",
        0.3,
        r"\b(?:respond|answer|reply|responses?) (?:as|in the (?:style|voice|tone) of|like)\b|\b(?:format|prefix|start|begin) (?:your|each|every) (?:response|answer|reply|message)s? (?:with|like)\b",
    ),
    r(
        "jailbreak",
        0.3,
        r"\b(?:opinions?|feelings|emotions|consciousness|sentient|self-aware)\b.{0,60}\b(?:has|have|can|will|express)\b|\b(?:rude|toxic|mean|sarcastic|swears?|insult|offend|cruel|racist|sexist|manipulative)\b",
    ),
    r(
        "jailbreak",
        0.3,
        r"\b(?:rules|guidelines|policies|ethics|morals|restrictions) (?:don'?t|do not|no longer) apply\b|\b(?:free|freedom|liberated|unlocked|unleashed)\b",
    ),
];

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
