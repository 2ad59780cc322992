"""Render an Adaptive Card JSON as Teams would, to a PNG (Adaptive Cards JS renderer in headless Chromium).

    npm install adaptivecards@3            # in some scratch folder
    python deploy/teams/render_card.py deploy/teams/card-example.json \
        <scratch>/node_modules/adaptivecards/dist/adaptivecards.js deploy/teams/card-example.png
"""
import json, pathlib, sys
from playwright.sync_api import sync_playwright
card = json.load(open(sys.argv[1]))
js = pathlib.Path(sys.argv[2]).read_text()
html = f"""<!doctype html><html><head><meta charset="utf-8">
<style>body{{background:#f5f5f5;font-family:'Segoe UI',sans-serif;margin:0;padding:24px}}
#wrap{{width:560px;background:white;border-radius:6px;box-shadow:0 1px 4px rgba(0,0,0,.2);padding:4px}}
.hdr{{font:600 13px sans-serif;color:#444;margin:0 0 6px 2px}}</style>
<script>{js}</script></head><body><div class="hdr">IOM Assistant</div><div id="wrap"></div>
<script>
AdaptiveCards.AdaptiveCard.onProcessMarkdown = function(text, result) {{
  var esc = text.replace(/&/g,'&amp;').replace(/</g,'&lt;');
  result.outputHtml = esc.split(/\\n\\n/).map(function(p){{return '<p style="margin:0 0 6px 0">'+p.replace(/\\*\\*(.+?)\\*\\*/g,'<b>$1</b>')+'</p>';}}).join('');
  result.didProcess = true;
}};
var card = new AdaptiveCards.AdaptiveCard();
card.hostConfig = new AdaptiveCards.HostConfig({{fontFamily: "Segoe UI, Helvetica Neue, sans-serif"}});
card.parse({json.dumps(card)});
document.getElementById('wrap').appendChild(card.render());
</script></body></html>"""
html_path = pathlib.Path(sys.argv[3]).with_suffix(".html").resolve()
html_path.write_text(html)
with sync_playwright() as p:
    b = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    page = b.new_page(viewport={"width": 620, "height": 900}, device_scale_factor=1)
    page.goto(html_path.as_uri())
    page.wait_for_timeout(500)
    page.locator("body").screenshot(path=sys.argv[3])
    b.close()
html_path.unlink()
print(sys.argv[3])
