"""A small fixed corpus (Dutch and English care documents) for the retrieval tests.

Documents carry groups and classifications so the access filter can be exercised; some
span several chunks so shaping (cap per document, merge adjacent) can be checked.
"""

from __future__ import annotations

import uuid
from functools import cache

from retrieval.analysis import Bm25SparseEncoder, detect_language
from retrieval.embedders import build_embedder
from vraagbaak_core.ports import Embedder
from vraagbaak_core.settings import EmbedderSettings
from vraagbaak_core.types import PUBLIC_GROUP, Chunk, StoredPoint

NS = uuid.UUID("0b3c1f4e-2d6a-4f51-8a1e-5c2b7d9e0f11")

# doc_id -> (title, groups, classification, [chunk texts])
DOCS: dict[str, tuple[str, tuple[str, ...], str, list[str]]] = {
    "bezoek": (
        "Bezoektijden",
        (PUBLIC_GROUP,),
        "openbaar",
        [
            "Bezoek is welkom van 10.00 tot 20.00 uur. Op de intensive care gelden kortere bezoektijden.",
            "Per patiënt zijn maximaal twee bezoekers tegelijk toegestaan. Kinderen onder de twaalf jaar "
            "komen alleen onder begeleiding van een volwassene.",
            "Bij een uitbraak van het norovirus kan de afdeling het bezoek tijdelijk beperken.",
        ],
    ),
    "hygiene": (
        "Protocol handhygiëne",
        ("verpleging",),
        "intern",
        [
            "Handhygiëne is de belangrijkste maatregel tegen ziekenhuisinfecties. Desinfecteer de handen "
            "met handalcohol voor en na elk patiëntcontact.",
            "Was de handen met water en zeep als ze zichtbaar vuil zijn of na contact met een patiënt met "
            "Clostridioides difficile.",
            "Draag geen ringen, horloges of armbanden tijdens de zorg. Nagels zijn kort en zonder nagellak.",
            "De hygiëneploeg controleert elk kwartaal de naleving van dit protocol op alle afdelingen.",
        ],
    ),
    "dossier": (
        "Inzage in het patiëntendossier",
        (PUBLIC_GROUP,),
        "openbaar",
        [
            "Patiënten hebben recht op inzage in hun patientendossier. Een verzoek wordt binnen vier weken "
            "afgehandeld.",
            "Medewerkers openen een dossier alleen als zij een behandelrelatie met de patiënt hebben; "
            "elke inzage wordt gelogd.",
        ],
    ),
    "beveiliging": (
        "Informatiebeveiligingsbeleid",
        ("ict",),
        "vertrouwelijk",
        [
            "Wachtwoorden bestaan uit minimaal veertien tekens en worden nooit gedeeld. "
            "Multifactorauthenticatie is verplicht voor toegang op afstand.",
            "Beveiligingsincidenten meldt u direct bij de servicedesk onder vermelding van het "
            "incidentnummer.",
        ],
    ),
    "medicatie": (
        "Medicatieveiligheid",
        ("verpleging", "apotheek"),
        "intern",
        [
            "Bij het toedienen van medicatie controleert de verpleegkundige de vijf juiste: juiste patiënt, "
            "juist middel, juiste dosis, juiste tijd en juiste toedieningsweg.",
            "Hoog-risicomedicatie zoals insuline en kalium wordt dubbel gecontroleerd door een tweede "
            "bevoegde collega.",
        ],
    ),
    "valpreventie": (
        "Valpreventie bij ouderen",
        ("verpleging",),
        "intern",
        [
            "Oudere patiënten worden bij opname gescreend op valrisico. Bij een verhoogd risico krijgt de "
            "patiënt een laag bed en antislipsokken.",
        ],
    ),
    "visitors": (
        "Visiting hours for international patients",
        (PUBLIC_GROUP,),
        "openbaar",
        [
            "Visitors are welcome between 10 am and 8 pm. Interpreters can be arranged through the patient "
            "service desk.",
            "International patients should bring their passport and insurance details at admission.",
        ],
    ),
    "salaris": (
        "Salarisschalen directie",
        ("directie",),
        "geheim",
        [
            "De salarisschalen van de raad van bestuur worden jaarlijks vastgesteld door de raad van "
            "toezicht.",
        ],
    ),
    "research": (
        "Research data management",
        ("onderzoek",),
        "vertrouwelijk",
        [
            "Pseudonymised research data is stored on the secure research environment. Exporting data "
            "requires approval of the data steward.",
            "Informed consent forms are archived for fifteen years after the study ends.",
        ],
    ),
}


def chunk_id(doc_id: str, index: int) -> str:
    return str(uuid.uuid5(NS, f"{doc_id}#{index}"))


def corpus_chunks() -> list[Chunk]:
    chunks = []
    for doc_id, (title, groups, classification, texts) in DOCS.items():
        for i, text in enumerate(texts):
            chunks.append(
                Chunk(
                    chunk_id=chunk_id(doc_id, i),
                    doc_id=doc_id,
                    index=i,
                    text=text,
                    title=title,
                    source=f"{doc_id}.md",
                    page=1 + i // 2,
                    groups=groups,
                    classification=classification,
                    language=detect_language(text),
                )
            )
    return chunks


@cache
def embedder() -> Embedder:
    return build_embedder(EmbedderSettings())  # the embedded default


@cache
def corpus_points() -> tuple[StoredPoint, ...]:
    chunks = corpus_chunks()
    dense = embedder().embed_documents([c.text for c in chunks])
    encoder = Bm25SparseEncoder()
    return tuple(
        StoredPoint(chunk=c, dense=dense[i].tolist(), sparse=encoder.encode_document(c.text, c.language))
        for i, c in enumerate(chunks)
    )
