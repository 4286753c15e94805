"""The staff case page shows what the case keeps of its agencies' answers (``keep:`` of a route
step), in its own block, labelled in the staff member's language; only once the agency
answered, never to a role that reads statuses only, and never a value the applicant sent."""
from __future__ import annotations

import re

from hub.demo.scenarios import licence_request
from hub.testing.agencies import wait_for_status
from webkit import submit

LICENCE = "driving_licence_authentication"


class Staff:
    """A member of staff's browser, signed in with ``token`` (a test token of `webkit`)."""

    def __init__(self, app, token: str, lang: str = "en") -> None:
        self.web, self.lang = app.test_client(), lang
        form = self.web.get(f"/staff/{lang}/sign-in").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
        signed = self.web.post(f"/staff/{lang}/sign-in", data={"token": token, "csrf": csrf})
        assert signed.status_code == 302, signed.text

    def case(self, reference: str):
        return self.web.get(f"/staff/{self.lang}/cases/{reference}")


def _kept(html: str) -> dict[str, tuple[str, str]]:
    """``field -> (label, value)`` of the page's kept-answers block."""
    block = re.search(r'<table id="kept-answers">(.*?)</table>', html, re.S)
    if block is None:
        return {}
    return {field: (label, value) for field, label, value in re.findall(
        r'<tr data-step="licence_check" data-field="(\w+)"><td>[^<]+</td>'
        r'<th scope="row">([^<]*)</th><td>([^<]*)</td></tr>', block.group(1))}


def test_the_agency_answer_kept_in_the_case_is_shown_to_staff_in_their_language(
        staff_app, hub):
    api = staff_app.test_client()
    licence = licence_request("authentic", serial=300001, status="suspended")["licence"]
    # An applicant cannot pass a value off as the agency's: what they send is never shown, and
    # the agency's answer replaces it.
    reference = submit(api, LICENCE, licence=licence, agency_answers={
        "licence_check": {"licence_status": "valid"}})["reference"]
    madrid = Staff(staff_app, "madrid")
    waiting = madrid.case(reference)
    assert waiting.status_code == 200
    assert _kept(waiting.text) == {} and 'id="kept-answers"' not in waiting.text

    with hub.run(concurrency=1):
        assert wait_for_status(hub, reference, "verified") == "verified"

    page = madrid.case(reference).text
    assert _kept(page) == {"licence_status": ("Licence status in NARSA&#39;s register",
                                              "suspended")}
    # The agency by its name, in the page's language (no raw code).
    assert "<td>National Road Safety Agency (NARSA)</td>" in page and "<td>narsa</td>" not in page
    # In the request table the applicant's data only: the kept answers have their own block.
    assert 'data-field="agency_answers' not in page
    french = Staff(staff_app, "madrid", lang="fr").case(reference).text
    assert "Conservé des réponses des administrations" in french
    assert _kept(french)["licence_status"][0] == "Situation du permis au registre de la NARSA"
    # The call centre reads statuses only.
    assert 'id="kept-answers"' not in Staff(staff_app, "callcentre").case(reference).text
