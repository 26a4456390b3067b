"""Real-looking replies to an approval email, as mail clients write them.

Each helper puts the person's own text above the quoted original the way one client does,
so a test can state what a reply written in that client decides.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingress.replies import ReplyDecision

SENDER = "Agency Assistant <assistant@agency.localhost>"
# The quoted original repeats our email, "APPROVE" and "Approve:" link included: none of it
# may ever count as the reply.
ORIGINAL = [
    "Your assistant wants to: Delete the 'Old Specs' folder",
    "Action: delete   Platform: Notion",
    "Decide by: Thu 06 Nov 2025 10:00 UTC. Without a decision by then, the action is not taken.",
    "",
    "Reply to this email with APPROVE or REJECT on the first line. You may add a note on the "
    "lines below.",
    "",
    "Approve: https://ingress.agency.localhost/approvals/abc",
    "Reject: https://ingress.agency.localhost/approvals/def",
]
ORIGINAL_HTML = (
    "<p>Your assistant wants to: <strong>Delete the 'Old Specs' folder</strong></p>"
    "<p>Reply with <strong>APPROVE</strong> or <strong>REJECT</strong> on the first line.</p>"
    '<p><a href="https://ingress.agency.localhost/approvals/abc">Approve</a></p>'
)


def _quoted() -> str:
    return "\n".join(f"> {line}" if line else ">" for line in ORIGINAL)


def gmail(own: str) -> str:
    """Gmail (web, plain text): the attribution wrapped over two lines, '>' quoting."""
    return (
        f"{own}\n\nOn Mon, 3 Nov 2025 at 10:02, Agency Assistant <\n"
        f"assistant@agency.localhost> wrote:\n\n{_quoted()}\n"
    )


def gmail_one_line(own: str) -> str:
    """Gmail with the attribution on one line."""
    return f"{own}\n\nOn Mon, Nov 3, 2025 at 10:02 AM {SENDER} wrote:\n\n{_quoted()}\n"


def outlook(own: str) -> str:
    """Outlook desktop/web: underscores, a From/Sent/To/Subject block, no '>' quoting."""
    original = "\r\n".join(ORIGINAL)
    return (
        f"{own}\r\n\r\n________________________________\r\n"
        f"From: {SENDER}\r\nSent: Monday, November 3, 2025 10:02 AM\r\n"
        "To: Bob Example <bob@example.com>\r\n"
        "Subject: Approval needed by Thu 06 Nov 2025 10:00 UTC: Delete the 'Old Specs' folder\r\n"
        f"\r\n{original}\r\n"
    )


def outlook_original_message(own: str) -> str:
    """Older Outlook: '-----Original Message-----' and the header block."""
    return (
        f"{own}\n\n-----Original Message-----\nFrom: {SENDER}\n"
        "Sent: Monday, November 3, 2025 10:02 AM\nTo: bob@example.com\n"
        "Subject: Approval needed\n\n" + "\n".join(ORIGINAL)
    )


def outlook_header_only(own: str) -> str:
    """Outlook without a separator line: the header block alone starts the original."""
    return (
        f"{own}\n\nFrom: {SENDER}\nDate: Monday, 3 November 2025 at 10:02\n"
        "To: Bob Example <bob@example.com>\nSubject: Approval needed\n\n" + "\n".join(ORIGINAL)
    )


def apple_mail(own: str) -> str:
    """Apple Mail: 'On <date>, at <time>, <sender> wrote:' and '>' quoting."""
    return f"{own}\n\n> On 3 Nov 2025, at 10:02, {SENDER} wrote:\n> \n{_quoted()}\n"


def iphone(own: str) -> str:
    """iPhone Mail: the 'Sent from my iPhone' signature, then Apple's quote."""
    return (
        f"{own}\n\nSent from my iPhone\n\nOn 3 Nov 2025, at 10:02, {SENDER} wrote:\n\n{_quoted()}"
    )


def outlook_ios(own: str) -> str:
    """Outlook for iOS: 'Get Outlook for iOS', then Outlook's header block."""
    return f"{own}\n\nGet Outlook for iOS<https://aka.ms/o0ukef>\n" + outlook("").lstrip()


def german(own: str) -> str:
    """Gmail in German: 'Am … schrieb …:' wrapped over two lines."""
    return (
        f"{own}\n\nAm Mo., 3. Nov. 2025 um 10:02 Uhr schrieb Agency Assistant <\n"
        f"assistant@agency.localhost>:\n\n{_quoted()}\n"
    )


def german_outlook(own: str) -> str:
    """Outlook in German: 'Von: / Gesendet: / An: / Betreff:'."""
    return (
        f"{own}\n\nVon: {SENDER}\nGesendet: Montag, 3. November 2025 10:02\n"
        "An: Bob Example <bob@example.com>\nBetreff: Genehmigung\n\n" + "\n".join(ORIGINAL)
    )


def french(own: str) -> str:
    """Gmail in French: 'Le … a écrit :'."""
    return f"{own}\n\nLe lun. 3 nov. 2025 à 10:02, {SENDER} a écrit :\n\n{_quoted()}\n"


def french_outlook(own: str) -> str:
    """Outlook in French: 'De : / Envoyé : / À : / Objet :'."""
    return (
        f"{own}\n\nDe : {SENDER}\nEnvoyé : lundi 3 novembre 2025 10:02\n"
        "À : Bob Example <bob@example.com>\nObjet : Approbation\n\n" + "\n".join(ORIGINAL)
    )


def spanish(own: str) -> str:
    """Gmail in Spanish: 'El … escribió:'."""
    return (
        f"{own}\n\nEl lun, 3 nov 2025 a las 10:02, Agency Assistant "
        f"(<assistant@agency.localhost>) escribió:\n\n{_quoted()}\n"
    )


def gmail_html(own_html: str) -> str:
    """Gmail's HTML part: the reply, then a gmail_quote container with a blockquote."""
    return (
        f'<div dir="ltr">{own_html}</div><br><div class="gmail_quote gmail_quote_container">'
        '<div dir="ltr" class="gmail_attr">On Mon, 3 Nov 2025 at 10:02, Agency Assistant '
        "&lt;assistant@agency.localhost&gt; wrote:<br></div>"
        '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px '
        f'solid rgb(204,204,204);padding-left:1ex">{ORIGINAL_HTML}</blockquote></div>'
    )


def outlook_html(own_html: str) -> str:
    """Outlook's HTML: appendonsend marker, a rule, divRplyFwdMsg, the original unquoted."""
    return (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        '<style type="text/css">p{margin-top:0;margin-bottom:0}</style></head>'
        '<body dir="ltr"><div class="elementToProof" style="font-family:Aptos,sans-serif;'
        f'font-size:12pt">{own_html}</div><div id="appendonsend"></div>'
        '<hr style="display:inline-block;width:98%" tabindex="-1">'
        '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif"><b>From:</b> '
        "Agency Assistant &lt;assistant@agency.localhost&gt;<br><b>Sent:</b> Monday, "
        "November 3, 2025 10:02 AM<br><b>Subject:</b> Approval needed</font><div>&nbsp;</div>"
        f"</div>{ORIGINAL_HTML}</body></html>"
    )


def apple_html(own_html: str) -> str:
    """Apple Mail's HTML: a blockquote type="cite" holding the attribution and original."""
    return (
        '<html><head><meta http-equiv="content-type" content="text/html; charset=utf-8"></head>'
        '<body style="overflow-wrap: break-word;">'
        f'<div>{own_html}</div><div><br><blockquote type="cite"><div>On 3 Nov 2025, at 10:02, '
        "Agency Assistant &lt;assistant@agency.localhost&gt; wrote:</div><br "
        f'class="Apple-interchange-newline"><div>{ORIGINAL_HTML}</div></blockquote></div>'
        "</body></html>"
    )


def yahoo_html(own_html: str) -> str:
    """Yahoo Mail's HTML: a yahoo_quoted container."""
    return (
        '<html><body><div class="ydp1a2b3c4dyahoo-style-wrap" style="font-family:Helvetica">'
        f'<div dir="ltr">{own_html}</div></div><div id="yahoo_quoted_8877" class="yahoo_quoted">'
        f'<div style="font-family:Helvetica">On Monday, 3 November 2025, 10:02, '
        f"Agency Assistant wrote:</div>{ORIGINAL_HTML}</div></body></html>"
    )


def thunderbird_html(own_html: str) -> str:
    """Thunderbird's HTML: a moz-cite-prefix attribution, then a cited blockquote."""
    return (
        f"<html><body><p>{own_html}</p>"
        '<div class="moz-cite-prefix">On 03/11/2025 10:02, Agency Assistant wrote:<br></div>'
        f'<blockquote type="cite" cite="mid:abc@agency.localhost">{ORIGINAL_HTML}</blockquote>'
        "</body></html>"
    )


def outlook_mobile_html(own_html: str) -> str:
    """Outlook for iOS's HTML: a mobile signature div, then Outlook's quote."""
    return outlook_html(
        f'<div dir="auto">{own_html}</div><div id="ms-outlook-mobile-signature">'
        '<div dir="ltr">Get <a href="https://aka.ms/o0ukef">Outlook for iOS</a></div></div>'
    )


@dataclass(frozen=True)
class Sample:
    """One reply: its text and HTML parts, what it decides and the note it leaves."""

    name: str
    text: str | None
    decision: ReplyDecision
    note: str | None = None
    html: str | None = None
