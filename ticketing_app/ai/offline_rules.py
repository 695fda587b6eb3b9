"""Keyword tables, skill hints and checklists used by the offline triage provider.

Phrases are written in plain lower case; they are matched on word boundaries after the ticket text is
normalised (accents removed, punctuation turned into spaces, so "can't" is "can t" and "e-mail" is "e mail").
A trailing "*" on a single word matches any word starting with it ("refund*" matches "refunded").
"""

from __future__ import annotations

import re

from ticketing_app.domain import Category

# Category -> {phrase: weight}. Title hits count double (see offline.TITLE_WEIGHT).
CATEGORY_KEYWORDS: dict[str, dict[str, float]] = {
    "account_access": {
        "login": 3, "log in": 3, "logging in": 3, "logins": 1, "logn": 2, "sign in": 3, "signing in": 3,
        "signin": 3, "sign on": 2, "sso": 3, "saml": 3, "2fa": 3, "mfa": 3, "two factor": 3,
        "authenticator": 3, "locked out": 3, "locked": 1.5, "lockout": 3, "unlock": 2, "password*": 3,
        "pasword": 3, "passwd": 3, "credentials": 2, "username": 2, "recovery codes": 3,
        "verification code": 2, "identity provider": 2, "idp": 2, "okta": 1.5, "azure ad": 2, "invite": 1.5,
        "invitation": 1.5, "ownership": 1.5, "logged out": 2, "logging me out": 3, "session": 1, "account": 1,
        "acount": 1, "access": 0.5, "anmelden": 3, "anmeldung": 3, "passwort": 3, "iniciar sesion": 3,
        "contrasena": 3, "connexion": 2, "mot de passe": 3, "sign up": 1, "signed up": 1,
    },
    "billing": {
        "charge": 2.5, "charged": 3, "charges": 2.5, "charging": 2, "refund*": 3, "invoice*": 2.5,
        "billing": 3, "billed": 3, "bill": 1.5, "subscription*": 2.5, "plan": 1, "pro plan": 2,
        "basic plan": 2, "annual plan": 2, "pricing": 2.5, "price": 2, "cost": 1.5, "payment*": 2, "pay": 1,
        "paid": 1.5, "card": 1.5, "credit card": 2, "declined": 2, "receipt": 2.5, "vat": 2.5, "tax": 1,
        "coupon": 3, "discount": 2.5, "upgrade": 1.5, "downgrade*": 2.5, "renewal": 2.5, "renew*": 1.5,
        "cancel*": 1, "seats": 1.5, "prorat*": 3, "stripe": 2, "paypal": 2, "money back": 3, "overcharg*": 3,
        "double charged": 3, "currency": 1.5, "checkout": 1.5, "payout*": 1, "bank": 1, "credit": 1,
    },
    "bug": {
        "bug": 3, "broken": 1.5, "crash*": 3, "exception": 2, "typeerror": 3, "nullpointerexception": 3,
        "error": 1, "nothing happens": 3, "button": 1.5, "click*": 1, "typo": 3, "misaligned": 3,
        "overlap*": 2, "layout": 2, "tooltip": 3, "display*": 1, "render*": 1.5, "blank": 1, "glitch*": 3,
        "icon": 1.5, "logo": 1.5, "blurry": 2, "pixelated": 2, "cosmetic": 2, "dark mode": 1, "drag": 1.5,
        "drop": 1, "sort*": 1.5, "dropdown": 1.5, "editor": 1.5, "checkbox": 2, "unchecks": 2, "reverts": 2,
        "console": 1.5, "regression": 3, "release": 1, "date picker": 2, "badge": 1, "colour": 1, "color": 1,
        "contrast": 1.5, "save": 1, "form": 1, "page": 0.5, "screen": 0.5, "doesn t work": 1,
        "not working": 1, "ui": 1, "internal server error": 2, "500": 1, "widget": 1, "uncaught": 2,
        "search": 1, "no results": 2, "finds nothing": 2, "shows nothing": 2, "reset": 1.5, "resets": 1.5,
        "filter": 1, "filters": 1, "tab": 0.5, "tabs": 0.5, "every time": 1, "reproduc*": 2,
        "steps to reproduce": 3, "expected": 1, "formatting": 2, "loses": 1.5, "since the update": 2,
        "after the update": 2, "went wrong": 1.5, "something went wrong": 2,
    },
    "performance": {
        "slow*": 4, "sluggish": 4, "latency": 4, "lag*": 2.5, "timeout*": 4, "timed out": 3, "times out": 3,
        "time out": 3, "loading": 1.5, "load*": 1, "spin*": 2, "seconds": 1.5, "minutes": 0.5, "outage": 3,
        "down": 2, "unavailable": 3, "unreachable": 3, "502": 3, "503": 3, "504": 3, "bad gateway": 3,
        "gateway timeout": 3, "cpu": 3, "memory": 2, "performance": 3, "hang*": 1.5, "freez*": 2,
        "unresponsive": 3, "status page": 2, "degraded": 3, "takes": 1, "speed": 2, "not reachable": 3,
        "can t reach": 3, "cannot reach": 3, "nothing loads": 3, "late": 1, "delay*": 1.5, "spikes": 1.5,
        "laggy": 3, "stutter*": 3, "ages": 1,
    },
    "data": {
        "import": 2.5, "imports": 2.5, "imported": 2.5, "importing": 2.5, "importer": 2.5, "export*": 2,
        "csv": 2, "xlsx": 2, "excel": 2, "report": 2, "reports": 2, "missing": 1.5, "disappeared": 3,
        "gone": 1, "deleted": 1.5, "restore*": 2, "duplicate*": 2, "records": 2, "record": 1, "data": 1.5,
        "totals": 2, "numbers": 1.5, "sync": 1, "migration": 1.5, "overwr*": 3, "corrupt*": 3, "encoding": 2,
        "garbled": 2, "timestamps": 2, "timezone": 1, "rows": 2, "row": 1.5, "columns": 1.5, "field": 1,
        "fields": 1, "backup": 2, "attachments": 1, "file not found": 2, "query": 1, "count": 1,
        "database": 1.5, "don t match": 2, "doesn t match": 2, "contacts": 1, "mismatch": 1.5, "wiped": 3,
        "erased": 3, "vanished": 3, "lost": 1.5, "empty": 1, "chart": 2, "charts": 2, "graph": 1.5,
        "stats": 2, "statistics": 2, "metrics": 2, "analytics": 2, "zero": 1, "recover*": 1.5, "history": 1,
    },
    "integration": {
        "api": 3, "apis": 3, "rest api": 3, "endpoint*": 2.5, "webhook*": 3, "graphql": 3, "integration*": 3,
        "connector": 3, "zapier": 3, "zap": 2, "slack": 2.5, "microsoft teams": 3, "teams connector": 3,
        "salesforce": 3, "hubspot": 3, "jira": 2, "oauth": 2.5, "api key": 1, "rate limit": 3, "429": 2,
        "smtp": 3, "spf": 3, "dkim": 3, "dmarc": 3, "mx": 2, "forward*": 2, "mailbox": 2, "email": 1,
        "emails": 1, "deliver*": 1.5, "bounce*": 2, "spam": 1.5, "header": 2, "sdk": 3, "payload": 2,
        "callback": 2, "sync": 1.5, "third party": 2, "plugin": 2, "embed*": 2, "google sheets": 2,
        "http": 0.5, "json": 1, "signature": 1.5, "hmac": 3, "reply to": 0.5, "threading": 2, "401": 2,
        "unauthorized": 1, "postman": 3, "curl": 3, "relay": 2, "docs": 0.5,
    },
    "security": {
        "hack*": 5, "compromis*": 5, "breach*": 5, "vulnerab*": 5, "xss": 4, "cross site scripting": 4,
        "sql injection": 4, "injection": 3, "injectable": 4, "csrf": 4, "exploit*": 3, "leak*": 3,
        "exposed": 3, "secret": 2, "phishing": 5, "suspicious": 3, "unauthori*": 1.5, "brute force": 4,
        "attack*": 3, "malware": 4, "wasn t me": 4, "weren t me": 4, "not me": 2, "new login": 3,
        "new sign in": 3, "soc 2": 4, "soc2": 4, "pen test": 3, "penetration": 3, "encrypt*": 3,
        "security": 2, "bug bounty": 4, "responsible disclosure": 4, "disclosure": 2, "audit log": 1.5,
        "revoke*": 2, "rotate": 2, "takeover": 3, "take over": 2, "stolen": 1.5, "still has access": 4,
        "none of us": 2, "document cookie": 3, "script": 1, "ip addresses": 1, "ips": 1, "gdpr": 2,
        "privacy": 2, "public repo": 2, "public repository": 2, "terminate": 1, "api key": 1.5, "misuse": 2,
        "fake": 2, "impersonat*": 4, "spoof*": 4, "scam": 4, "someone": 2, "unknown": 1.5, "unrecogni*": 2,
        "new device": 3, "new location": 3, "never been": 2, "weird": 1, "strange": 1, "in the url": 3,
        "plaintext": 3, "in plain text": 1, "stored in plain text": 3, "browser history": 2, "commit*": 1,
        "public": 1, "dpa": 4, "data processing": 3, "subprocessor*": 4, "compliance": 3, "iso 27001": 4,
        "hipaa": 4, "security review": 3, "questionnaire": 2, "got her password": 3, "got his password": 3,
        "got my password": 3, "has my password": 3,
    },
    "feature_request": {
        "feature request": 5, "feature": 2, "please add": 4, "could you add": 4, "can you add": 4,
        "would be nice": 4, "would be great": 4, "would be useful": 4, "would love": 3, "it would be": 1.5,
        "wish": 3, "wish list": 3, "suggestion": 4, "idea": 3, "roadmap": 3, "add support": 3,
        "support for": 1.5, "requesting": 2, "enhancement": 3, "improvement": 2, "option to": 1.5,
        "ability to": 2, "allow": 1.5, "configurable": 2.5, "please build": 4, "new feature": 4,
        "we d like": 1, "please make": 2, "small idea": 4, "nice to have": 4, "we need a": 1.5, "add a": 1,
        "add an": 1, "please let us": 4, "let us": 1.5, "be able to": 2, "customis*": 1.5, "customiz*": 1.5,
        "any plans": 3, "do you plan": 3, "will you support": 3, "would like to see": 3,
    },
    "how_to": {
        "how do i": 3, "how can i": 3, "how to": 2.5, "how i can": 3, "how do we": 3, "how can we": 3,
        "where can i": 3, "where do i": 3, "where is": 2, "where are": 1, "is it possible": 2.5,
        "is there a way": 2.5, "can i": 1.5, "difference between": 3, "guide": 2, "tutorial": 3,
        "documentation": 1.5, "walk me through": 3, "i m new": 2, "new to": 1.5, "set up": 1, "setting": 0.5,
        "settings": 0.5, "assign": 0.5, "shortcut": 1.5, "what exactly": 1.5, "change the": 1, "rename": 1,
        "archive": 1, "print": 1.5, "tag": 1, "use the": 0.5, "explain": 1.5, "right way": 2.5,
        "best way": 2.5, "what s the": 1, "configure": 1, "where do we": 3,
    },
    "other": {
        "thank*": 1.5, "great support": 3, "partnership": 4, "partner": 2, "reseller": 3, "job": 2, "cv": 3,
        "resume": 2, "job application": 4, "hiring": 3, "opening": 1, "journalist": 4, "press": 2,
        "interview": 2, "webinar": 4, "conference": 3, "event": 1, "office": 1.5, "offices": 2,
        "company address": 3, "vendor": 2, "procurement": 1, "test ticket": 4, "please ignore": 3,
        "testing": 1.5, "sales": 2.5, "demo": 2.5, "happy new year": 4, "wrong team": 4,
        "wrong department": 4, "feedback": 1.5, "recording": 1.5, "tax id": 1,
    },
}

# Tie-break order: a missed security report costs most, so security wins ties; then the default order.
TIE_ORDER = (Category.SECURITY, *(category for category in Category if category is not Category.SECURITY))
# Score "other" starts with, so that a ticket with no real signal lands there.
OTHER_BASELINE = 1.0
# Extra how_to weight for a question-shaped title / description.
QUESTION_TITLE_BONUS = 1.5
QUESTION_BODY_BONUS = 0.5

# ---- priority signals (matched like the category phrases) ----
# Many people affected.
BLAST_PHRASES = (
    "everyone", "everybody", "all users", "all our users", "all of our users", "all customers",
    "all our customers", "all of our customers", "all agents", "all our agents", "all of our agents",
    "nobody", "no one", "none of our", "whole company", "whole organisation", "whole organization",
    "whole platform", "entire company", "entire team", "entire organisation", "entire organization",
    "entire support", "all offices", "company wide", "site wide", "sitewide", "all staff", "all employees",
    "every user", "every one of our", "every customer", "all our staff", "for all", "our whole",
    "all tenants",
)
# Words that count affected people when preceded by a number (e.g. "200 users").
PEOPLE_WORDS = (
    "users", "customers", "agents", "employees", "people", "staff", "members", "colleagues", "clients",
    "accounts", "seats", "admins", "persons", "moderators",
)
MANY_PEOPLE = 20
# The service is down.
OUTAGE_PHRASES = (
    "outage", "is down", "are down", "site down", "app down", "completely down", "went down", "goes down",
    "down for", "system down", "servers down", "is unavailable", "are unavailable", "service unavailable",
    "site unavailable", "app unavailable", "platform unavailable", "unavailable for", "unreachable",
    "not reachable", "502", "503", "504", "bad gateway", "service unavailable", "gateway timeout",
    "can t reach", "cannot reach", "nothing loads", "production outage",
)
# Work is stopped.
BLOCKED_PHRASES = ("blocked", "idle", "can t work", "cannot work", "can not work", "locked out",
"can t log in")
# Data is gone (weights; >= 1.0 counts as data loss).
LOSS_WEIGHTS: dict[str, float] = {
    "disappeared": 1.5, "gone": 1.0, "deleted": 1.0, "wiped": 1.5, "lost": 1.0, "overwr*": 1.5,
    "no other copy": 1.5, "restore*": 1.0, "missing": 0.5, "file not found": 0.5, "data loss": 2.0,
    "erased": 1.5, "vanished": 1.5,
}
# Money being lost right now.
MONEY_LOSS_PHRASES = (
    "losing orders", "losing money", "losing revenue", "losing sales", "losing customers", "losing business",
    "every checkout", "all payments", "payments failing", "payments are failing", "can t pay", "cannot pay",
    "failed payments", "order processing", "orders are failing",
)
# Something is broken (as opposed to a question or a request).
BROKEN_PHRASES = (
    "can t", "cant", "cannot", "can not", "couldn t", "unable", "not able", "fail*", "error*", "broken",
    "not working", "doesn t work", "does not work", "don t work", "isn t working", "won t", "stopped",
    "nothing happens", "crash*", "wrong", "incorrect", "missing", "stuck", "locked", "lockout", "reject*",
    "invalid", "disabled", "denied", "declined", "timeout", "timed out", "times out", "slow*", "sluggish",
    "lag*", "latency", "spin*", "hang*", "freez*", "late", "delay*", "bounce*", "duplicate*", "garbled",
    "blank", "empty", "mismatch", "doesn t match", "don t match", "instead of", "twice", "double",
    "charged again", "was charged", "were charged", "been charged", "overcharg*", "not applied",
    "not delivered", "never arrives", "never arrived", "no longer", "not received", "not reaching",
    "not being", "nothing is", "not sent", "still shows", "still says", "still showing", "still see",
    "revert*", "unchecks", "resets", "exception", "cuts off", "stops at", "problem", "401", "403", "404",
    "429", "500", "502", "503", "keeps", "mistake", "accidental*", "refund*", "disappeared", "gone",
    "deleted", "off by", "merged", "not found", "unexpected", "too many", "unknown", "unrecogni*",
)
# Phrases that do not mean something is broken, removed before BROKEN_PHRASES are checked.
NOT_BROKEN_PHRASES = (
    "can t find", "cannot find", "couldn t find", "can t remember", "cannot remember", "can t wait",
    "can t see where", "can not find",
)
# A problem that went away by itself.
RESOLVED_PHRASES = (
    "fine now", "ok now", "okay now", "working again", "works again", "works now", "resolved itself",
    "back to normal", "sorted itself",
)
# Visual-only problems.
COSMETIC_PHRASES = (
    "typo", "misaligned", "alignment", "cosmetic", "purely visual", "looks off", "looks odd", "blurry",
    "pixelated", "colour", "color", "contrast", "font", "spacing", "tooltip", "just a small thing",
    "small thing", "not a big deal", "minor", "still works", "just looks", "only cosmetic", "icon", "padding",
)
# Breakage words too vague to outweigh a question-shaped title ("Do you accept transfer instead of card?").
WEAK_BROKEN_PHRASES = frozenset({
    "instead of", "keeps", "problem", "unknown", "unrecogni*", "deleted", "late", "empty", "blank", "double",
    "twice", "mistake", "accidental*", "refund*", "merged", "too many", "unexpected", "not being",
    "nothing is", "off by", "gone", "missing", "delay*", "lag*", "still see", "resets", "revert*",
})
# Strong breakage that a cosmetic word does not cancel.
SEVERE_PHRASES = (
    "crash*", "exception", "nothing happens", "not working", "doesn t work", "fail*", "can t", "cannot",
    "unable", "500", "data loss",
)
# Security words that mean an incident or a vulnerability, not a compliance question.
SECURITY_INCIDENT_PHRASES = (
    "hack*", "compromis*", "breach*", "vulnerab*", "xss", "cross site scripting", "injection", "injectable",
    "csrf", "exploit*", "leak*", "exposed", "phishing", "suspicious", "brute force", "attack*", "malware",
    "wasn t me", "weren t me", "not me", "unauthorized access", "unauthorised access", "unauthorized login",
    "unauthorized logins", "takeover", "take over", "stolen", "still has access", "none of us", "new login",
    "new sign in", "public repo", "public repository", "revoke*", "impersonat*", "spoof*", "scam",
    "new device", "in the url", "stored in plain text", "plaintext", "misuse", "got her password",
    "got his password", "got my password", "has my password",
)
# A secret together with a sign that it left the company is an exposure incident.
SECRET_PHRASES = (
    "api key", "api keys", "secret", "secrets", "token", "tokens", "password", "passwords", "credentials",
    "private key", "access key", "signing secret",
)
EXPOSURE_PHRASES = (
    "public", "publicly", "posted", "pasted", "github", "screenshot", "exposed", "leak*", "committed",
    "pastebin", "shared", "tweet*", "twitter",
)
# Extra security score when any incident phrase is present: an incident outranks its topic (login, API key).
SECURITY_INCIDENT_BONUS = 4.0
# ... and more when a secret was exposed: that is a security matter whatever product area it touches.
EXPOSED_SECRET_BONUS = 8.0
# Question words at the start of a title or sentence.
QUESTION_STARTS = (
    "how", "where", "what", "which", "when", "can i", "can we", "can you tell", "could i", "is it",
    "is there", "are there", "do you", "does", "do i", "do we", "should", "will", "would it", "any",
)

# ---- text handling ----
# URLs, e-mail addresses and host names are quoted as facts but not scored ("helpdesk-login.net" is no login).
ADDRESS = re.compile(
    r"\b[A-Za-z][\w+.-]{0,15}://\S+|(?<![\w.+-])[\w.+-]++@[\w-]+(?:\.[\w-]+)+"
    r"|\b(?:[\w-]+\.)+(?:com|net|org|io|co|de|uk|fr|es|app|dev|ai|eu|us)\b",
    re.IGNORECASE,
)
# Greetings skipped when picking the summary sentence.
GREETING = re.compile(
    r"^\s*(hi|hello|hey|hallo|hola|dear\s+\w+|good\s+(morning|afternoon|evening)|greetings)\b[\s,!.:-]*",
    re.IGNORECASE,
)

# ---- prompt injection ----
# A sentence matching this addresses the triage system instead of describing the problem; it is dropped.
INJECTION = re.compile(
    r"\b(ignore|disregard|forget|override|bypass)\b[^.!?\n]{0,40}\b(instructions?|rules?|prompts?|guidelines)\b"
    r"|\byou\s+are\s+now\b|\bact\s+as\b|\bpretend\s+(to\s+be|you)\b|\b(admin|developer|god|jailbreak)\s+mode\b"
    r"|\[\s*/?\s*(instruction|system|inst)\b|^\W*(system|assistant|instructions?)\W*$"
    r"|\b(priority|category|severity)\s*[=:]\s*\w+"
    r"|\b(set|mark|classify|label|flag|treat|make|output|escalate|change)\b[^.!?\n]{0,40}"
    r"\b(as|to)\s+(an?\s+)?(high|urgent|critical|security)\b(?=\s*(priority|severity|category|issue|ticket|[.,;:!]|$))"
    r"|\b(priority|severity)\s+(to|as)\s+(high|urgent|critical)\b",
    re.IGNORECASE,
)
# Cheap pre-check: a lower-cased sentence containing none of these cannot match INJECTION.
INJECTION_TRIGGERS = (
    "ignor", "disregard", "forget", "overrid", "bypass", "you are now", "act as", "pretend", "mode", "[",
    "system", "assistant", "instruction", "priority", "category", "severity", "high", "urgent", "critical",
    "security",
)

# ---- facts quoted in the notes: (label, pattern, lower-case substrings of which one must occur or ()) ----
_MONTHS = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?"
    r"|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_PEOPLE = "|".join(PEOPLE_WORDS)
_COUNT = r"\d{1,3}(?:,\d{3})+|\d+"
PEOPLE_COUNT = re.compile(rf"\b({_COUNT})\s+(?:[a-z]+\s+)?(?:{_PEOPLE})\b", re.IGNORECASE)
_BROWSERS = (
    "Chrome", "Firefox", "Safari", "Edge", "Opera", "Brave", "Internet Explorer", "Windows", "macOS",
    "Mac OS", "OS X", "iOS", "iPadOS", "Android", "Ubuntu", "Linux", "ChromeOS", "iPhone", "iPad", "MacBook",
)
FACT_PATTERNS: tuple[tuple[str, re.Pattern[str], tuple[str, ...]], ...] = (
    ("Error codes", re.compile(
        r"\b(?:E|ERR|ERROR)[-_]?\d{2,6}\b|\b[A-Z][A-Z0-9]+(?:_[A-Z0-9]+)+\b|\b[a-z]+(?:_[a-z0-9]+){1,5}\b"
        r"|\berror\s*#\s*\d{2,6}\b"), ()),
    ("HTTP status", re.compile(
        r"\b[45]\d\d\s+(?:Bad Request|Unauthorized|Forbidden|Not Found|Method Not Allowed|Conflict|Gone"
        r"|Too Many Requests|Internal Server Error|Bad Gateway|Service Unavailable|Gateway Time-?out"
        r"|Unprocessable Entity|Request Timeout)\b"
        r"|\b(?:HTTP|status(?: code)?|error|response)\s*:?\s*[45]\d\d\b"
        r"|\b[45]\d\d\s+(?:error|errors|response)\b",
        re.IGNORECASE), ()),
    ("Exceptions", re.compile(r"\b(?:[a-z_][a-z0-9_]*\.)*[A-Z][A-Za-z0-9]*(?:Exception|Error)\b"),
     ("exception", "error")),
    ("Versions", re.compile(
        r"\b(?:v|version\s*)\d+(?:\.\d+){1,3}\b|\b\d{1,3}\.\d{1,3}\.\d{1,3}(?:\.\d+)?\b", re.IGNORECASE),
     (".",)),
    ("Affected people", re.compile(
        rf"\b(?:{_COUNT})\s+(?:[a-z]+\s+)?(?:{_PEOPLE})\b"
        r"|\b(?:all(?: of)? our (?:users|customers|agents|staff)|all (?:users|customers|agents|employees)"
        r"|everyone|everybody|nobody|no one|(?:whole|entire) (?:company|team|organi[sz]ation|platform))\b",
        re.IGNORECASE), ()),
    ("Amounts", re.compile(
        r"[$€£¥]\s?\d[\d,]*(?:\.\d{1,2})?|\b\d[\d,]*(?:\.\d{1,2})?\s?(?:USD|EUR|GBP|CHF|dollars|euros)\b"),
     ("$", "€", "£", "¥", "usd", "eur", "gbp", "chf", "dollars")),
    ("Invoice / order ids", re.compile(
        r"\b(?:invoice|order|receipt|transaction|case|ref(?:erence)?)\s*(?:#|no\.?|number|id)?\s*:?\s*"
        r"#?[A-Za-z]*-?\d[\w-]{2,}|\bINV-?\d{3,}\b", re.IGNORECASE),
     ("invoice", "order", "receipt", "transaction", "case", "ref", "inv")),
    ("Hosts", re.compile(
        r"(?<=://)[A-Za-z0-9.-]+\.[A-Za-z]{2,}|\b(?:[a-z0-9-]+\.)+(?:com|net|org|io|co|de|uk|fr|es|app|dev|ai"
        r"|eu|us|ca|nl|ch|se|it|info|biz)\b"), (".",)),
    ("Dates and times", re.compile(
        rf"\b\d{{4}}-\d{{2}}-\d{{2}}\b|\b\d{{1,2}}/\d{{1,2}}/\d{{2,4}}\b|\b\d{{1,2}}\s+{_MONTHS}\b(?:\s+\d{{4}})?"
        rf"|\b{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?\b(?:,?\s+\d{{4}})?"
        r"|\b\d{1,2}:\d{2}(?:\s?(?:UTC|GMT|CET|CEST|EST|EDT|PST|PDT|BST|am|pm))?\b|\b\d{1,2}\s?(?:am|pm)\b"),
     ()),
    ("Browsers and systems", re.compile(rf"\b(?:{'|'.join(_BROWSERS)})\b(?:\s+v?\d+(?:\.\d+)*)?"),
     tuple(b.lower() for b in _BROWSERS)),
)
MAX_FACTS_PER_KIND = 8

# ---- skills ----
# Skills (canonical spellings) that fit each category, most specific first.
CATEGORY_SKILLS: dict[str, tuple[str, ...]] = {
    "account_access": ("account access", "authentication", "accounts", "identity", "login", "auth", "iam"),
    "billing": ("billing", "payments", "invoicing", "subscriptions", "refunds", "finance"),
    "bug": ("troubleshooting", "bugs", "qa", "debugging", "engineering"), "performance": ("performance",
    "infrastructure", "reliability", "sre", "devops", "operations", "backend"), "data": ("data", "reporting",
    "data import", "imports", "exports", "analytics", "databases"), "integration": ("integrations", "apis",
    "webhooks", "email"), "security": ("security", "incident response", "infosec", "appsec", "compliance"),
    "feature_request": ("product", "product management", "feedback"), "how_to": ("general support", "product",
    "onboarding", "training", "customer success", "support"), "other": ("general support", "support",
    "customer success", "sales"),
}
# Skills returned when the request carries no vocabulary.
DEFAULT_SKILLS: dict[str, tuple[str, ...]] = {
    "account_access": ("authentication",), "billing": ("billing",), "bug": ("troubleshooting",),
    "performance": ("performance",), "data": ("data",), "integration": ("integrations",),
    "security": ("security",), "feature_request": ("product",), "how_to": ("general support",),
    "other": ("general support",),
}
# Text phrase -> skills it points to (any spelling; compared in canonical form).
SKILL_HINTS: dict[str, tuple[str, ...]] = {
    "stripe": ("stripe", "payments", "billing"), "paypal": ("paypal", "payments", "billing"),
    "refund*": ("refunds", "billing", "payments"), "invoice*": ("invoicing", "billing"), "vat": ("tax",
    "invoicing"), "subscription*": ("subscriptions", "billing"), "card": ("payments",),
    "payment*": ("payments", "billing"), "checkout": ("payments", "checkout"), "postgres": ("postgres",
    "databases", "sql"), "postgresql": ("postgres", "databases", "sql"), "psql": ("postgres", "databases"),
    "mysql": ("mysql", "databases", "sql"), "sql": ("sql", "databases"), "select": ("sql",),
    "mongodb": ("mongodb", "databases"), "redis": ("redis",), "react": ("react", "frontend", "js"),
    "vue": ("vue", "frontend", "js"), "angular": ("angular", "frontend"), "javascript": ("js", "frontend"),
    "typescript": ("ts", "frontend"), "css": ("css", "frontend"), "html": ("html", "frontend"),
    "browser": ("frontend",), "chrome": ("frontend",), "firefox": ("frontend",), "safari": ("frontend",),
    "button": ("frontend",), "layout": ("frontend",), "dark mode": ("frontend",), "ios": ("ios", "mobile"),
    "iphone": ("ios", "mobile"), "ipad": ("ios", "mobile"), "android": ("android", "mobile"),
    "mobile": ("mobile",), "python": ("python", "backend"), "django": ("django", "python"), "java": ("java",
    "backend"), "node": ("node", "backend"), "api": ("apis", "backend"), "rest": ("apis",),
    "graphql": ("graphql", "apis"), "webhook*": ("webhooks", "apis"), "slack": ("slack", "integrations"),
    "salesforce": ("salesforce", "crm"), "hubspot": ("hubspot", "crm"), "zapier": ("zapier", "integrations"),
    "jira": ("jira", "integrations"), "microsoft teams": ("microsoft teams", "integrations"),
    "smtp": ("email", "smtp"), "spf": ("email", "deliverability", "dns"), "dkim": ("email", "deliverability",
    "dns"), "dmarc": ("email", "deliverability"), "email": ("email",), "dns": ("dns", "networking"),
    "tls": ("tls", "networking"), "ssl": ("tls", "networking"), "sso": ("sso", "authentication"),
    "saml": ("saml", "sso", "authentication"), "okta": ("okta", "sso"), "azure ad": ("azure ad", "sso"),
    "oauth": ("oauth", "authentication"), "2fa": ("2fa", "authentication"), "mfa": ("2fa", "authentication"),
    "two factor": ("2fa", "authentication"), "authenticator": ("2fa",), "password*": ("authentication",),
    "kubernetes": ("kubernetes", "devops"), "docker": ("docker", "devops"), "aws": ("aws", "devops"),
    "cpu": ("infrastructure", "performance"), "csv": ("data import", "imports", "exports"),
    "excel": ("exports",), "import": ("data import", "imports"), "imported": ("data import", "imports"),
    "importing": ("data import", "imports"), "export*": ("exports",), "report": ("reporting", "analytics"),
    "reports": ("reporting", "analytics"), "xss": ("appsec", "security"), "csrf": ("appsec", "security"),
    "injection": ("appsec", "security"), "gdpr": ("compliance", "privacy"), "soc 2": ("compliance",),
    "encrypt*": ("security", "compliance"), "phishing": ("security",),
}
# Hinted skills that may be added to the category defaults when the request has no vocabulary.
TECH_SKILLS = frozenset({
    "stripe", "paypal", "postgres", "mysql", "mongodb", "redis", "react", "vue", "angular", "ios", "android",
    "python", "django", "java", "node", "graphql", "webhooks", "slack", "salesforce", "hubspot", "zapier",
    "jira", "microsoft teams", "email", "dns", "tls", "sso", "saml", "okta", "azure ad", "oauth", "2fa",
    "kubernetes", "docker", "aws",
})
MAX_SKILLS_OUT = 5

# ---- output text ----
CATEGORY_LABELS: dict[str, str] = {
    "account_access": "Account access issue", "billing": "Billing issue", "bug": "Bug report",
    "performance": "Performance issue", "data": "Data issue", "integration": "Integration issue",
    "security": "Security report", "feature_request": "Feature request", "how_to": "How-to question",
    "other": "General message",
}

CHECKLISTS: dict[str, tuple[str, ...]] = {
    "account_access": (
        "Confirm the requester's identity through a known channel before changing anything on the account.",
        "Look up the account: status (active, locked, disabled), last good login, recent failed attempts.",
        "Check the sign-in method: password, SSO/SAML (IdP configuration and certificate), or 2FA device.",
        "If many users fail at once, compare with recent IdP or SSO changes and the status page.",
        "Unlock or send a reset link only after verification; never send passwords or codes by email.",
        "Ask the user to confirm they can sign in, then note the root cause on the ticket.",
    ),
    "billing": (
        "Find the customer in the billing system and match the charge, invoice or order id mentioned.",
        "Compare the charged amount with the plan, seats, coupons and any proration on the invoice.",
        "For a duplicate or wrong charge, confirm both transactions settled before refunding or crediting.",
        "For failed payments, read the decline code and tell the customer what to ask their bank.",
        "Record any refund, credit or plan change on the account and send the customer the updated invoice.",
        "Escalate to finance if the amount is large, a chargeback is open, or the billing system disagrees.",
    ),
    "bug": (
        "Reproduce the problem with the steps, browser/OS and app version given; ask for missing steps.",
        "Collect evidence: screenshot, console or crash log, exact error text and the time it happened.",
        "Check the known-issues list and recent releases for a matching bug.",
        "Offer a workaround if one exists (other browser, manual entry) and tell the customer.",
        "File or link the engineering issue with steps and affected users, then set a follow-up.",
    ),
    "performance": (
        "Check the status page and monitoring (latency, error rate, CPU) for the region and time reported.",
        "Establish scope: one user, one team, one region or everyone; page, API or both.",
        "Gather timestamps, affected URLs or endpoints, and a HAR file or request ids if possible.",
        "Compare with recent deploys, maintenance windows and traffic spikes.",
        "If widespread, open or join an incident and post updates; otherwise escalate with the evidence.",
    ),
    "data": (
        "Identify the affected records, time range and the action before it (import, sync, bulk edit).",
        "Stop further damage: pause the import, sync or automation that touches the data.",
        "Compare what the app shows with the source file or export, noting counts and example ids.",
        "Check audit logs and backups; confirm what can be restored and the restore point.",
        "Restore or correct the data with engineering, then ask the customer to verify a sample.",
    ),
    "integration": (
        "Identify the integration, API endpoint or webhook and the account or key it uses.",
        "Look at delivery or request logs: status codes, error bodies, timestamps and retry history.",
        "Check credentials and configuration: API key scope, OAuth token expiry, signing secret, DNS.",
        "Check rate limits and recent API or connector changes in the changelog.",
        "Reproduce with a minimal request (curl or the test button) and share the working example.",
    ),
    "security": (
        "Treat the report as confidential; restrict the ticket to the security team.",
        "If an account may be compromised, lock it or end its sessions and force a password reset.",
        "Revoke and rotate any exposed keys, tokens or secrets, then check usage logs for misuse.",
        "Collect evidence: audit log entries, IP addresses, timestamps, affected accounts.",
        "For vulnerability reports, reproduce safely, thank the reporter and follow the disclosure policy.",
        "Follow the incident-response process and decide whether customers must be notified.",
    ),
    "feature_request": (
        "Restate the request and the underlying need (who needs it and why) in one line.",
        "Check whether an existing feature, setting or integration already covers it.",
        "Search the feature-request board; add this customer to an existing request or create one.",
        "Reply with the workaround, if any, and set expectations: no delivery date is promised.",
    ),
    "how_to": (
        "Answer the question directly with the exact menu path or steps.",
        "Link the matching help-centre article or guide (plain URL).",
        "Check the user's role or plan allows the action; say so if it does not.",
        "Offer a short call or screen share if the steps are long, then confirm the question is answered.",
    ),
    "other": (
        "Read the ticket to decide whether it belongs to support at all.",
        "Route it to the right team (sales, partnerships, press, HR) or answer briefly.",
        "Close spam or test tickets with a note; thank the sender for feedback.",
    ),
}

PRIORITY_HINTS: dict[str, str] = {
    "high": (
        "High priority: acknowledge within the high-priority target, check the status page and monitoring, "
        "and open an incident or page the on-call engineer if several customers are affected."
    ),
    "medium": (
        "Medium priority: respond within the normal target; give any workaround and set a follow-up."
    ),
    "low": "Low priority: answer in normal queue order; no escalation needed.",
}
