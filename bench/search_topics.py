"""The scripted session of bench/search.py: 16 windows on distinct topics, and its questions.

Each topic: a window title, the lines the window shows, paraphrases that share no content
word with the title or the lines (checked by :func:`shared_words`, 4-letter stems), and
queries that do share words, as a person types them into a search box.
"""

from __future__ import annotations

import re

TOPICS: list[dict[str, object]] = [
    {"title": "Travel document application - Firefox",
     "lines": ["Travel document application", "Applicant: surname, given names, date of birth",
               "Upload a recent photograph (35 x 45 mm)", "Fee: 75 EUR, payable by card",
               "Processing takes about three weeks"],
     "para": ["the form for renewing my passport", "where I requested a new passport",
              "cost of getting a new passport", "identity papers for going abroad"],
     "words": ["travel document application", "photograph upload fee"]},
    {"title": "Lasagne al forno - recipe.txt",
     "lines": ["Lasagne al forno", "Brown the minced beef with onion and garlic",
               "Layer pasta sheets, ragu and bechamel", "Bake 45 minutes at 180 degrees",
               "Serves six"],
     "para": ["instructions for an Italian casserole", "cooking a meat and cheese oven dish",
              "what I was going to make for dinner", "how hot the stove should be for supper"],
     "words": ["lasagne bechamel"]},
    {"title": "Booking confirmation - Mail",
     "lines": ["Your flight to Lisbon is confirmed", "Departure 07:40, gate B12, seat 14C",
               "Checked baggage: 1 x 23 kg", "Booking reference: QX7TZP"],
     "para": ["my plane ticket to Portugal", "when does my trip to Portugal leave",
              "airline reservation for the holiday", "luggage allowance on the journey"],
     "words": ["flight Lisbon", "checked baggage"]},
    {"title": "psql - production",
     "lines": ["ERROR: deadlock detected", "Process 4412 waits for ShareLock on transaction 99812",
               "blocked by process 4419", "HINT: See server log for query details"],
     "para": ["two sql sessions holding locks against each other", "database concurrency failure",
              "postgres jam between two clients", "the db stuck because of mutual locking"],
     "words": ["deadlock detected"]},
    {"title": "Income tax return 2025 - Spreadsheet",
     "lines": ["Income tax return 2025", "Gross salary 58,200",
               "Deductions: pension contributions 4,100", "Refund expected: 730"],
     "para": ["my yearly filing with the revenue office",
              "how much money the government owes me back", "annual earnings declaration",
              "payroll and retirement savings numbers"],
     "words": ["tax refund", "pension deductions"]},
    {"title": "Interview prep - Obsidian",
     "lines": ["Interview at Acme Robotics, Thursday 10:00", "Role: senior embedded engineer",
               "Prepare: system design, past projects", "Ask about team size and remote policy"],
     "para": ["getting ready to meet a potential employer",
              "the hiring conversation for a firmware position",
              "what should I say to the recruiters", "career opportunity at a hardware startup"],
     "words": ["Acme interview"]},
    {"title": "Weather forecast - Browser",
     "lines": ["Forecast for Berlin", "Tomorrow: heavy rain, 11 C, wind 40 km/h",
               "Weekend: sunny, 18 C"],
     "para": ["will I need an umbrella", "is it going to be wet outside",
              "climate conditions in the German capital", "how warm will saturday be"],
     "words": ["Berlin forecast"]},
    {"title": "git - src/webshop",
     "lines": ["CONFLICT (content): Merge conflict in src/cart/checkout.py",
               "Automatic merge failed; fix conflicts and then commit the result.",
               "both modified: src/cart/checkout.py"],
     "para": ["two branches changed the same file",
              "two people's edits clashing in the shopping basket code",
              "could not combine my changes with a colleague's", "overlapping edits in a repo"],
     "words": ["merge conflict checkout"]},
    {"title": "Appointment - Calendar",
     "lines": ["Dr. Keller, dermatology", "Wednesday 15:30, Praxis am Park",
               "Bring health card and referral letter"],
     "para": ["when do I see the skin specialist", "my medical visit midweek",
              "the physician booking", "what to take to the clinic"],
     "words": ["dermatology appointment", "referral letter"]},
    {"title": "pytest - src/parser",
     "lines": ["FAILED tests/test_parse.py::test_unicode",
               "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff",
               "1 failed, 41 passed in 2.31s"],
     "para": ["character encoding crash in my python suite",
              "the check that broke because of non-ascii input",
              "a red build from an encoding problem", "invalid characters breaking a unit check"],
     "words": ["UnicodeDecodeError"]},
    {"title": "Car insurance quote - Browser",
     "lines": ["Vehicle: 2019 Skoda Octavia", "Comprehensive cover, excess 300",
               "Annual premium: 612"],
     "para": ["how much to protect my automobile per year", "policy price for the family sedan",
              "motor protection offer", "what it costs to have the auto protected"],
     "words": ["Skoda premium", "car insurance"]},
    {"title": "Moving checklist - Notes",
     "lines": ["Moving day: 14 March", "Book a van, pack kitchen boxes",
               "Register new address at the town hall", "Cancel old internet contract"],
     "para": ["relocating to a different flat", "things to do before changing homes",
              "hire a truck and tell the city where I live", "preparing for the relocation"],
     "words": ["moving van", "town hall address"]},
    {"title": "Training plan - Runner app",
     "lines": ["Week 6 of 16: marathon plan", "Tuesday: intervals 6 x 800 m",
               "Sunday: long run 24 km", "Easy pace 5:45/km"],
     "para": ["my jogging schedule before the big race", "sprint repeats and a slow jog",
              "endurance workouts", "preparing for a 42 kilometre event"],
     "words": ["marathon intervals"]},
    {"title": "Q3 sales report - Slides",
     "lines": ["Q3 revenue 4.2M, up 12% year over year", "Top region: Nordics",
               "Churn fell to 2.1%"],
     "para": ["how the business did last quarter", "company earnings presentation",
              "which market grew the most", "customer retention figures"],
     "words": ["Q3 revenue", "churn"]},
    {"title": "Party invite - Messages",
     "lines": ["Mia turns 7 on Saturday!", "Party at the climbing hall, 14:00-17:00",
               "Please RSVP by Thursday", "Gift idea: art supplies"],
     "para": ["my kid's celebration", "a child's birthday event",
              "present for a young girl", "bouldering celebration for a seven year old"],
     "words": ["climbing party"]},
    {"title": "kubectl - prod-cluster",
     "lines": ["pod api-7f9c CrashLoopBackOff", "Back-off restarting failed container",
               "OOMKilled: memory limit 512Mi exceeded"],
     "para": ["our web service ran out of RAM", "the app server dying from too little RAM",
              "a k8s workload terminated for heap usage", "the service going down again and again"],
     "words": ["OOMKilled memory limit"]},
]

STOP = set("""a an the and or of to for in on at by with from is are was were be been it its
this that these those my me i we our you your he she they them what which who when where why
how will would should could can do does did not no yes so if then than there here about into
over under again all any some much many more most very too up down out off have has had
going get getting go make made use""".split())


def _stems(text: str) -> set[str]:
    out = set()
    for w in re.findall(r"[a-z0-9]+", text.lower()):
        if w in STOP:
            continue
        out.add(w[:4] if len(w) >= 4 else w)
    return out


def shared_words(question: str, topic: dict[str, object]) -> set[str]:
    """Content-word stems the question shares with the topic's title and lines."""
    screen = str(topic["title"]) + " " + " ".join(topic["lines"])  # type: ignore[arg-type]
    return _stems(question) & _stems(screen)
