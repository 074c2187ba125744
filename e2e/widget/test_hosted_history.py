"""On the hosted booking page each step has its own address: the browser's Back button returns
to the previous step and a reload shows the step it was on."""

import re

from playwright.sync_api import expect


def test_back_and_reload_follow_the_steps(live_server, studio, page):
    page.goto(f"{live_server}/book/{studio.slug}/")
    page.get_by_role("link", name="Courthouse").click()
    expect(page.get_by_role("heading", name="Courthouse")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/package/courthouse"))

    page.get_by_role("button", name=re.compile("Choose a date")).click()
    expect(page.get_by_role("heading", name=re.compile("Choose your date"))).to_be_visible()
    expect(page).to_have_url(re.compile(r"/date\?"))
    page.reload()
    expect(page.get_by_role("heading", name=re.compile("Choose your date"))).to_be_visible()

    page.go_back()
    expect(page.get_by_role("heading", name="Courthouse")).to_be_visible()
    page.go_back()
    expect(page.get_by_role("heading", name=re.compile("Choose a package"))).to_be_visible()
