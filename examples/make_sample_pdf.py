"""Regenerates examples/docs/afdeling/decubituspreventie.pdf.

Needs `pip install fpdf2` (not a project dependency; the PDF is committed).
"""

from pathlib import Path

from fpdf import FPDF

PAGES = [
    ("Protocol decubituspreventie", [
        ("Doel", "Dit protocol beschrijft hoe verpleegkundigen decubitus (doorligwonden) voorkomen bij "
                 "opgenomen patiënten. Protocolnummer DP-2025-03."),
        ("Risicoinschatting", "Beoordeel het risico op decubitus binnen 6 uur na opname met de Braden-schaal. "
                              "Een score van 18 of lager betekent een verhoogd risico. Herhaal de beoordeling "
                              "elke 48 uur en bij iedere verandering in de toestand van de patiënt."),
    ]),
    ("Maatregelen", [
        ("Wisselligging", "Patiënten met een verhoogd risico krijgen wisselligging volgens schema: op een "
                          "standaardmatras elke 2 uur, op een drukverlagende matras elke 4 uur. Leg de patiënt "
                          "in een hoek van 30 graden op de zij."),
        ("Huidinspectie", "Inspecteer de huid ten minste eenmaal per dienst, vooral bij stuit, hielen en "
                          "heupen. Noteer afwijkingen in het EPD en meld een decubituswond van categorie 2 of "
                          "hoger aan de wondconsulent."),
    ]),
]


def main() -> None:
    pdf = FPDF()
    pdf.set_title("Protocol decubituspreventie")
    pdf.set_author("Ziekenhuis De Linde")
    for title, sections in PAGES:
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 16)
        pdf.multi_cell(0, 10, title, new_x="LMARGIN", new_y="NEXT")
        for head, body in sections:
            pdf.set_font("Helvetica", "B", 12)
            pdf.multi_cell(0, 8, head, new_x="LMARGIN", new_y="NEXT")
            pdf.set_font("Helvetica", "", 11)
            pdf.multi_cell(0, 6, body, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
    pdf.output(str(Path(__file__).parent / "docs" / "afdeling" / "decubituspreventie.pdf"))


if __name__ == "__main__":
    main()
