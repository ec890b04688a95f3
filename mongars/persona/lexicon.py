"""Word lists behind the style metrics (data only; see docs/persona.md).

Language detection counts function words of six languages (English, French,
Spanish, German, Italian, Portuguese). Formality counts register markers;
technical share counts a computing/engineering lexicon. All lower case.
"""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Frequent function words, chosen to overlap little between the six languages.
STOPWORDS: dict[str, frozenset[str]] = {
    "en": _words(
        "about an and are at be been but by can could did do does for from had has have how i if "
        "in is it just me my not of on or our should that the their there they this to was we were "
        "what when where which who why will with would you your"
    ),
    "fr": _words(
        "au aux avec avez bonjour car ce ces cette comment dans de des donc du elle elles es est "
        "et il ils je la le les leur ma mais merci mes mon ne notre nous ont ou où pas peut peux "
        "plus pour pourquoi pouvez quand que qui quoi sa ses sommes son sont suis sur ta tes ton "
        "très tu un une votre vous était êtes être"
    ),
    "es": _words(
        "al con cuál cuándo cómo del dónde el ella en era es esta estar este estos está están "
        "gracias hay hola la las los mi mis muy no nosotros o para pero por porque puede puedo que "
        "qué ser son su sus también tengo tiene tu tus tú un una unas unos ustedes y yo él"
    ),
    "de": _words(
        "aber auch auf bin bist bitte danke das dass dein dem den der die du ein eine einen er es "
        "für gibt habe haben hallo hast hat ich ihr im in ist kann kein keine können mein meine "
        "mit nicht noch nur oder sehr sein sie sind und wann war warum was welche wie wir wo zu"
    ),
    "it": _words(
        "abbiamo anche che ciao come con cosa dei del della delle dove e era essere gli grazie ha "
        "hai ho il io la le lei lo loro lui ma mia mio molto nel nella noi non o per perché posso "
        "puoi può quando questa questo sono su sua suo tu tua tuo un una uno voi è"
    ),
    "pt": _words(
        "a as com como da das do dos e ela ele em era esta estar este está estão eu isso mas meu "
        "minha muito na nas no nos não nós o obrigada obrigado olá onde os ou para pode por porque "
        "posso qual quando que ser seu sua são também tem tenho tu um uma umas uns você vocês é"
    ),
}

# Register markers. Multi-word markers are matched as phrases in the lowered text.
FORMAL_WORDS = _words(
    "agradecería appreciate assistance atenciosamente atentamente auriez consequently cordialement "
    "cortesemente could dear distinti estimada estimado furthermore geehrte geehrter gentile "
    "gostaria however kindly könnten madam madame may might monsieur moreover please poderia "
    "podría podrían potrebbe pourriez prezada prezado regarding regards request senhor senhora "
    "shall sincerely sir therefore usted ustedes veuillez vos votre voudriez vous whom would "
    "würden"
)
FORMAL_PHRASES = ("thank you", "je vous prie", "merci de", "mit freundlichen", "le ruego")
INFORMAL_WORDS = _words(
    "awesome bah beleza blz boh bro btw chido ciao cool coucou dai dein deine dich dir dude gonna "
    "gotta haha hehe hey heya idk imo jaja jo jsp k kinda kkk lmao lol mdr ngl nope ok okay omg "
    "ouai ouais oye pls plz ptdr rofl salut sorta stp ta tbh tes thx tkt tnx toi ton tu tía tío u "
    "ur vale valeu vc wanna wtf xd ya yeah yep yo yup"
)
# English contractions ("don't", "I'm") are informal; French elisions ("j'ai") are not.
CONTRACTION_SUFFIXES = ("n't", "'re", "'m", "'ll", "'ve", "'d", "’re", "’m", "’ll", "’ve")

# Computing and engineering vocabulary (singular forms; a trailing "s" is stripped).
TECHNICAL_WORDS = _words(
    "abfrage algorithm algorithme api apis array async await backend bash binary bit bug byte "
    "cache cli client cluster code codice compilateur compile compiler compute config "
    "configuration consulta container cpu css csv código daemon database dataset datenbank debug "
    "debugger dependency deploy deployment dns docker endpoint exception fonction framework "
    "frontend función function funktion funzione git github gpu gradient hash heap html http https "
    "integer iterator java javascript json kernel kubernetes lambda latency library linux memory "
    "microservice migration module mutex neural npm parser pointer postgres postgresql protocol "
    "python query queue recursion refactor regex regression repository requête rest runtime rust "
    "schema script sdk server serveur servidor shell socket sql sqlite struct syntax tcp thread "
    "token tokenizer transformer tuple typescript udp unix url variable vector virtual vm webhook "
    "websocket xml yaml"
)

# Languages a user may choose (ISO 639-1) and how directives name them; espeak-ng
# has a voice for each (Chinese is its "cmn").
LANGUAGES: dict[str, str] = {
    "ar": "Arabic",
    "cs": "Czech",
    "da": "Danish",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "es": "Spanish",
    "fi": "Finnish",
    "fr": "French",
    "he": "Hebrew",
    "hi": "Hindi",
    "hu": "Hungarian",
    "id": "Indonesian",
    "it": "Italian",
    "ja": "Japanese",
    "ko": "Korean",
    "nb": "Norwegian",
    "nl": "Dutch",
    "pl": "Polish",
    "pt": "Portuguese",
    "ro": "Romanian",
    "ru": "Russian",
    "sv": "Swedish",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "vi": "Vietnamese",
    "zh": "Chinese",
}
