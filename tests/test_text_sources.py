import bz2

from saesteer.text_sources import (
    fortune_documents,
    html_documents,
    html_paragraphs,
    wikipedia_documents,
    wikitext_paragraphs,
)

PAGE = """<html><head><title>Skip me</title></head><body>
<div class="navheader"><p>Prev Next and other navigation links here.</p></div>
<h2>A heading that is not prose</h2>
<div class="para">The handbook wraps paragraphs in a div, and the <code>apt</code> tool
  is named inline, which must stay in the sentence.</div>
<pre>for x in range(10): print(x)</pre>
<p>A plain paragraph with <em>emphasis</em> and a <a href="#">link</a> inside it.</p>
<table><tr><td>cell text that should not be kept as prose at all.</td></tr></table>
<ul><li>A list item is a block of its own, long enough to count as prose.</li></ul>
</body></html>"""


def test_html_paragraphs_keep_prose_blocks_only(tmp_path):
    path = tmp_path / "page.html"
    path.write_text(PAGE)
    assert html_paragraphs(path) == [
        "The handbook wraps paragraphs in a div, and the apt tool is named inline, "
        "which must stay in the sentence.",
        "A plain paragraph with emphasis and a link inside it.",
        "A list item is a block of its own, long enough to count as prose.",
    ]
    docs = list(html_documents(str(tmp_path / "*.html")))
    assert len(docs) == 1 and "emphasis" in docs[0] and "range(10)" not in docs[0]


def test_wikitext_is_reduced_to_plain_paragraphs():
    wikitext = (
        "{{Infobox|name={{nested|x}}}}\n"
        "'''Anarchism''' is a [[political philosophy]] that advocates "
        "[[self-governance|self-governed]] societies.<ref>Woodcock</ref>&nbsp;It is old.\n"
        "== History ==\n"
        "* a list line\n"
        "[[Category:Philosophy]]\n"
    )
    assert wikitext_paragraphs(wikitext) == [
        "Anarchism is a political philosophy that advocates self-governed societies. It is old."
    ]


def test_wikipedia_dump_skips_redirects(tmp_path):
    sentence = "The article text is long enough to be kept as a sentence of prose."
    xml = f"""<mediawiki><page><title>A</title><ns>0</ns><revision>
<text>#REDIRECT [[B]]</text></revision></page>
<page><title>B</title><ns>0</ns><revision><text>{sentence}</text></revision></page>
<page><title>Talk:B</title><ns>1</ns><revision><text>{sentence} Talk.</text></revision></page>
</mediawiki>"""
    path = tmp_path / "dump.xml.bz2"
    path.write_bytes(bz2.compress(xml.encode()))
    assert list(wikipedia_documents(path)) == [sentence]


def test_fortunes_are_split_on_percent_lines(tmp_path):
    (tmp_path / "quotes").write_text(
        "One two three four five.\n%\nToo short\n%\nSix seven\neight nine ten.\n"
    )
    (tmp_path / "quotes.dat").write_bytes(b"\x00binary index")
    docs = list(fortune_documents(str(tmp_path / "*")))
    assert docs == ["One two three four five.\n\nSix seven eight nine ten."]
