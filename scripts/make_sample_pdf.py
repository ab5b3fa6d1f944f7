"""Writes the sample help center's one PDF (the Lumio Limited Warranty) with reportlab.

The PDF is committed; run this only to change it: pip install reportlab, then
python scripts/make_sample_pdf.py
"""

from pathlib import Path

from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

OUT = Path(__file__).resolve().parent.parent / "supportbot/sample/helpcenter/returns/lumio-limited-warranty.pdf"

SECTIONS = [
    ("Lumio Limited Warranty", None),
    ("1. Who is covered", "This warranty is given by Lumio Home Inc. to the original buyer of a new Lumio product bought from Lumio or an authorised retailer. It can be transferred once, with the device, to a new owner who registers the device in their Lumio account."),
    ("2. Warranty periods", "Bulbs, light strips, lamps and switches: two (2) years from the date of delivery. Lumio Hub: three (3) years from the date of delivery. Accessories such as power adapters and mounting clips: one (1) year. A replacement product is covered for the rest of the original period or 90 days, whichever is longer."),
    ("3. What we will do", "If a covered product fails because of a defect in materials or workmanship, Lumio will, at its choice, repair it, replace it with the same or an equivalent model, or refund the purchase price. Replacements are shipped free of charge. Lumio may ask you to return the faulty product with a prepaid label."),
    ("4. What is not covered", "Normal wear of finishes; damage caused by accidents, drops, liquids, fire, lightning or power surges; products used outdoors unless rated IP65 or higher; products opened, modified or repaired by anyone other than Lumio; and cosmetic damage that does not affect how the product works."),
    ("5. How to make a claim", "Contact Lumio support within the warranty period with the product's serial number and a description of the problem. Registered products need no receipt; otherwise a proof of purchase showing the date is required. Claims are usually decided within 2 business days."),
    ("6. Your consumer rights", "This warranty is in addition to your rights under consumer law in your country, which it does not limit. In the European Union and the United Kingdom the legal guarantee for goods is at least two years."),
]


def main() -> None:
    styles = getSampleStyleSheet()
    story = []
    for heading, body in SECTIONS:
        story.append(Paragraph(heading, styles["Title" if body is None else "Heading2"]))
        if body:
            story.append(Paragraph(body, styles["BodyText"]))
        story.append(Spacer(1, 8))
    document = SimpleDocTemplate(str(OUT), pagesize=LETTER, title="Lumio Limited Warranty", author="Lumio Home Inc.")
    document.build(story)
    print(OUT)


if __name__ == "__main__":
    main()
