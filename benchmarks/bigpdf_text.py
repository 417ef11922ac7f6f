"""Deterministic, realistic Dutch protocol text for a generated PDF of any length (benchmarks/bigpdf.py).

Each page is a numbered section of a care-protocol handbook: a heading and paragraphs of sentences
built from templates and word lists by a seeded ``random.Random``, so the same seed and page
number always give the same text, and no two pages are the same.
"""

from __future__ import annotations

import random

TOPICS = [
    "handhygiëne", "valpreventie", "decubituspreventie", "medicatieveiligheid", "mondzorg",
    "katheterzorg", "wondzorg", "voedingsbeleid", "vrijheidsbeperking", "isolatiemaatregelen",
    "pijnbestrijding", "palliatieve zorg", "overdracht tussen diensten", "brandveiligheid",
    "omgaan met agressie", "infuustherapie", "bloedafname", "sondevoeding", "delierpreventie",
    "ontslagplanning", "privacy en dossiervoering", "meldingen van incidenten", "antibioticabeleid",
    "zorg rond het levenseinde", "tilbeleid", "huidverzorging", "stomazorg", "diabeteszorg",
]
ROLES = [
    "de verpleegkundige", "de verzorgende", "de arts", "de teamleider", "de specialist ouderengeneeskunde",
    "de fysiotherapeut", "de diëtist", "de apotheker", "de hygiënist", "de leerling-verpleegkundige",
    "de dienstdoende arts", "de zorgcoördinator", "de wondconsulent",
]
ACTIONS = [
    "controleert", "noteert", "bespreekt", "evalueert", "meldt", "beoordeelt", "registreert",
    "overlegt over", "past aan", "documenteert",
]
OBJECTS = [
    "de vochtbalans", "de pijnscore", "het valrisico", "de huid van de cliënt", "de medicatielijst",
    "het zorgplan", "de wondgenezing", "de voedingstoestand", "de mondgezondheid", "de bloedsuikerwaarde",
    "de katheter", "de infuuslijn", "de afspraken met de familie", "het gebruik van hulpmiddelen",
    "de gemaakte afspraken", "de bijwerkingen van de medicatie", "de mobiliteit van de cliënt",
]
TIMES = [
    "bij elke dienstwissel", "dagelijks", "binnen 24 uur na opname", "minstens eenmaal per week",
    "na elke val", "bij elke verandering in de situatie", "voor en na elke handeling",
    "tijdens het multidisciplinair overleg", "bij ontslag", "elke ochtend", "om de vier uur",
]
REASONS = [
    "zodat afwijkingen tijdig worden opgemerkt", "om complicaties te voorkomen",
    "omdat de inspectie dit verwacht", "zodat collega's de zorg naadloos kunnen overnemen",
    "om de kwaliteit van zorg aantoonbaar te maken", "zodat de cliënt weet waar hij aan toe is",
    "omdat dit in de richtlijn staat", "om onnodige belasting van de cliënt te vermijden",
]
MATERIALS = [
    "handalcohol", "handschoenen", "een schort", "een mondmasker", "steriele gazen", "een tillift",
    "een antidecubitusmatras", "een bedhek", "een medicijnrol", "een bladderscan", "een glucosemeter",
]
TEMPLATES = [
    "{Role} {action} {obj} {time}, {reason}.",
    "{Time} {action} {role} {obj} en legt de uitkomst vast in het elektronisch dossier.",
    "Gebruik {material} wanneer je {obj} beoordeelt; was daarna je handen met water en zeep.",
    "Als {obj} verslechtert, neemt {role} binnen een uur contact op met {role2}.",
    "Bij twijfel over {obj} overlegt {role} met {role2} voordat de zorg wordt voortgezet.",
    "Het protocol {topic} geldt voor alle afdelingen; afwijken mag alleen na overleg met {role}.",
    "Leg {material} klaar voordat je begint, {reason}.",
    "{Role} zorgt dat {obj} {time} wordt besproken met de cliënt en zijn naasten.",
    "Na scholing in {topic} mag {role} deze handeling zelfstandig uitvoeren.",
    "Een incident rond {topic} wordt dezelfde dag gemeld in het meldsysteem, {reason}.",
]


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _sentence(rng: random.Random, topic: str) -> str:
    role, role2 = rng.sample(ROLES, 2)
    time_ = rng.choice(TIMES)
    return rng.choice(TEMPLATES).format(
        Role=_cap(role), role=role, role2=role2, action=rng.choice(ACTIONS), obj=rng.choice(OBJECTS),
        time=time_, Time=_cap(time_), reason=rng.choice(REASONS), material=rng.choice(MATERIALS), topic=topic,
    )


def page_text(seed: int, page: int, words: int = 300) -> tuple[str, list[str]]:
    """The heading and paragraphs of 1-based ``page``: about ``words`` words of Dutch protocol text."""
    rng = random.Random(seed * 1_000_003 + page)
    topic = TOPICS[(page - 1) // 25 % len(TOPICS)]
    heading = f"{(page - 1) // 25 + 1}.{(page - 1) % 25 + 1} {_cap(topic)}: afspraken en werkwijze"
    paragraphs: list[str] = []
    n = 0
    while n < words:
        para = " ".join(_sentence(rng, topic) for _ in range(rng.randint(3, 6)))
        paragraphs.append(para)
        n += len(para.split())
    return heading, paragraphs


def write_pdf(path: str, pages: int, seed: int = 20, words: int = 300) -> None:
    """A ``pages``-page A4 PDF (reportlab), one section per page, a chapter outline every 25 pages.

    Page ``n`` of the file shows :func:`page_text` (seed, n), so a test can check every page's text.
    """
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import simpleSplit
    from reportlab.pdfgen.canvas import Canvas

    c = Canvas(path, pagesize=A4, pageCompression=1, invariant=1)
    c.setTitle(f"Zorghandboek ({pages} pagina's)")
    width, height = A4
    left, top, size = 56, height - 64, 10
    for page in range(1, pages + 1):
        heading, paragraphs = page_text(seed, page, words)
        if (page - 1) % 25 == 0:
            key = f"h{page}"
            c.bookmarkPage(key)
            c.addOutlineEntry(heading.split(":")[0], key, level=0)
        text = c.beginText(left, top)
        text.setFont("Helvetica-Bold", 12)
        text.textLine(heading)
        text.setFont("Helvetica", size)
        text.moveCursor(0, 6)
        for para in paragraphs:
            for line in simpleSplit(para, "Helvetica", size, width - 2 * left):
                text.textLine(line)
            text.textLine("")
        c.drawText(text)
        c.setFont("Helvetica", 8)
        c.drawRightString(width - left, 36, f"pagina {page} van {pages}")
        c.showPage()
    c.save()
