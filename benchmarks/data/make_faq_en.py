"""Writes faq_en/: a small English hospital FAQ in BEIR format, questions paraphrased away from
the answers' wording (a set where dense retrieval is much stronger than BM25). Hand-written."""

import json
from pathlib import Path

FAQ = [
    (
        "parking",
        "Parking",
        "The garage on Lindelaan is open day and night. The first half hour is free, after "
        "that the fee is two euros per hour. Bays for disabled drivers are next to the main entrance.",
        "Where can I leave my car and what does it cost?",
    ),
    (
        "wifi",
        "Wireless internet",
        "Patients and guests can use the free network 'Gast'. No password is needed; "
        "accept the terms on the splash page.",
        "How do I get online with my laptop during my stay?",
    ),
    (
        "meals",
        "Meals",
        "Breakfast is served from 7.30, lunch at noon and dinner at 17.00. Dietitians adapt "
        "menus for allergies and religious requirements.",
        "When do patients get food and can it be halal or gluten free?",
    ),
    (
        "valuables",
        "Valuables",
        "Leave jewellery and large sums of money at home. Each room has a small safe; the "
        "hospital is not liable for lost items.",
        "Is there somewhere to lock up my watch and cash?",
    ),
    (
        "interpreter",
        "Interpreters",
        "A professional interpreter can join your appointment in person or by phone. "
        "Ask the outpatient desk at least two working days ahead; the service is free.",
        "My mother doesn't speak Dutch, can someone translate for her at the doctor?",
    ),
    (
        "records",
        "Access to your medical file",
        "You may read and copy your health record. Submit a request via the "
        "patient portal; we respond within four weeks.",
        "How can I see what the doctors wrote about me?",
    ),
    (
        "complaint",
        "Complaints",
        "Unhappy with your care? Talk to the team first. If that does not help, the "
        "complaints officer mediates, and you can escalate to the independent disputes committee.",
        "I was treated badly, who do I talk to?",
    ),
    (
        "smoking",
        "Smoking",
        "The entire site, including gardens and entrances, is tobacco free. Nicotine "
        "replacement is available on the ward.",
        "Can I have a cigarette outside the building?",
    ),
    (
        "flowers",
        "Flowers",
        "Cut flowers are welcome on most wards but not on intensive care or the "
        "haematology unit because of infection risk.",
        "Am I allowed to bring a bouquet for my friend in ICU?",
    ),
    (
        "discharge",
        "Going home",
        "Discharge usually happens before 11.00. Your nurse explains your medication and "
        "follow-up appointments and gives you a letter for your GP.",
        "What happens on the day I leave the hospital?",
    ),
    (
        "children",
        "Children visiting",
        "Young visitors are welcome when accompanied by an adult. Child life "
        "specialists can prepare siblings for a visit to a sick brother or sister.",
        "Can my kids come to see their grandma?",
    ),
    (
        "costs",
        "Costs and insurance",
        "Most treatment is covered by your basic health insurance, but your annual "
        "deductible applies. Check your policy or contact your insurer before a planned procedure.",
        "Will I have to pay for my operation myself?",
    ),
    (
        "second",
        "Second opinion",
        "You have the right to ask another specialist to review your diagnosis or "
        "treatment plan. Your GP or specialist can refer you.",
        "I doubt my diagnosis, can another doctor look at it?",
    ),
    (
        "fasting",
        "Before surgery",
        "Do not eat for six hours before anaesthesia. Clear liquids such as water are "
        "allowed until two hours before.",
        "Until when may I drink and have breakfast before my operation?",
    ),
    (
        "medication",
        "Own medicines",
        "Bring your current medicines in their original packaging together with a "
        "recent list from your pharmacy.",
        "Should I take my pills with me when I'm admitted?",
    ),
    (
        "phone",
        "Mobile phones",
        "Mobile phones may be used everywhere except near monitoring equipment on "
        "intensive care, where signs indicate restricted zones.",
        "Is it okay to call people from my bed?",
    ),
    (
        "pharmacy",
        "Outpatient pharmacy",
        "The pharmacy in the main hall dispenses prescriptions from our "
        "specialists on weekdays between 8.00 and 18.00.",
        "Where do I collect the drugs the specialist prescribed?",
    ),
    (
        "bloodtest",
        "Blood tests",
        "The laboratory draws blood without an appointment on weekdays from 7.30. Take "
        "a number at the entrance of the lab.",
        "Do I need to book a time to have my blood taken?",
    ),
    (
        "privacy",
        "Privacy",
        "Staff may only access your data when they are involved in your treatment. Every "
        "access is logged and audited.",
        "Who is allowed to look at my personal information?",
    ),
    (
        "chaplain",
        "Spiritual care",
        "Chaplains of several faiths and a humanist counsellor are available for "
        "conversations, rituals and support around illness and loss.",
        "Is there a priest or imam I can speak with?",
    ),
    (
        "volunteer",
        "Volunteering",
        "Volunteers guide visitors, run the library trolley and keep patients company. "
        "Apply through the volunteer office.",
        "I'd like to help out at the hospital without pay, how?",
    ),
    (
        "lostfound",
        "Lost property",
        "Items found on the premises are kept at the reception desk for three months.",
        "I forgot my scarf somewhere in the building, where can I ask?",
    ),
    (
        "taxi",
        "Transport",
        "The main entrance has a taxi stand. Patients with mobility problems can book "
        "wheelchair transport through their insurer.",
        "How do I get a ride home if I can't walk well?",
    ),
    (
        "cancel",
        "Cancelling an appointment",
        "If you cannot make it, let the clinic know at least 24 hours in "
        "advance so the slot can be given to someone else.",
        "What should I do if I can't come to my check-up?",
    ),
    (
        "results",
        "Test results",
        "Your specialist discusses results during your next consultation. Results also "
        "appear in the patient portal after seven days.",
        "When will I hear what came out of my scan?",
    ),
    (
        "rooming",
        "Staying overnight with your child",
        "One parent may stay the night next to their child on the "
        "paediatric ward; a foldaway bed is provided.",
        "Can I sleep at the hospital while my son is admitted?",
    ),
    (
        "mrsa",
        "Isolation",
        "Patients carrying resistant bacteria are nursed in a single room. Visitors wear an "
        "apron and disinfect their hands when leaving.",
        "Why is my dad alone in a room and why must I wear a gown?",
    ),
    (
        "donation",
        "Organ donation",
        "Register your decision in the national donor register. Talk with your family "
        "so they know your wishes.",
        "How do I make sure my organs go to someone after I die?",
    ),
    (
        "portal",
        "Patient portal",
        "Log in with your national digital ID to view appointments, letters and lab "
        "values, and to send messages to your care team.",
        "Is there a website where I can check my appointments?",
    ),
    (
        "emergency",
        "Emergency department",
        "For life-threatening situations call 112. Otherwise contact the "
        "out-of-hours GP service first; they refer you to the emergency department if needed.",
        "My child has a high fever at night, should we just go to A&E?",
    ),
]

out = Path(__file__).resolve().parent / "faq_en"
(out / "qrels").mkdir(parents=True, exist_ok=True)
with (out / "corpus.jsonl").open("w") as fh:
    for doc_id, title, text, _ in FAQ:
        fh.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
with (out / "queries.jsonl").open("w") as fh:
    for i, (_, _, _, q) in enumerate(FAQ):
        fh.write(json.dumps({"_id": f"q{i}", "text": q}) + "\n")
with (out / "qrels" / "test.tsv").open("w") as fh:
    fh.write("query-id\tcorpus-id\tscore\n")
    for i, (doc_id, *_) in enumerate(FAQ):
        fh.write(f"q{i}\t{doc_id}\t1\n")
