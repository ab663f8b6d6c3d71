"""arXiv's category taxonomy, so a query's `cat:` names a real category and is spelt one way.

From https://arxiv.org/category_taxonomy: archives with their subject classes; a few archives
(hep-th, quant-ph, ...) have none. A mistyped category would silently match nothing, so the
query language refuses names not listed here.
"""

from __future__ import annotations

_CLASSES = {
    "cs": "AI AR CC CE CG CL CR CV CY DB DC DL DM DS ET FL GL GR GT HC IR IT LG LO MA MM MS NA "
    "NE NI OH OS PF PL RO SC SD SE SI SY",
    "stat": "AP CO ME ML OT TH",
    "eess": "AS IV SP SY",
    "econ": "EM GN TH",
    "math": "AC AG AP AT CA CO CT CV DG DS FA GM GN GR GT HO IT KT LO MG MP NA NT OA OC PR QA "
    "RA RT SG SP ST",
    "q-bio": "BM CB GN MN NC OT PE QM SC TO",
    "q-fin": "CP EC GN MF PM PR RM ST TR",
    "astro-ph": "CO EP GA HE IM SR",
    "nlin": "AO CD CG PS SI",
    "physics": "acc-ph ao-ph app-ph atm-clus atom-ph bio-ph chem-ph class-ph comp-ph data-an "
    "ed-ph flu-dyn gen-ph geo-ph hist-ph ins-det med-ph optics plasm-ph pop-ph soc-ph space-ph",
    "cond-mat": "dis-nn mes-hall mtrl-sci other quant-gas soft stat-mech str-el supr-con",
}
_WHOLE = ("gr-qc", "hep-ex", "hep-lat", "hep-ph", "hep-th", "math-ph", "nucl-ex", "nucl-th")
_NAMES = {
    name.casefold(): name
    for name in [
        *_CLASSES,
        *_WHOLE,
        "quant-ph",
        *(f"{archive}.{code}" for archive, codes in _CLASSES.items() for code in codes.split()),
    ]
}


def known_category(text: str) -> str | None:
    """The category or archive as arXiv spells it (`cs.cv` -> `cs.CV`), or None if unknown."""
    return _NAMES.get(text.casefold())


def archive(category: str) -> str:
    """`cs.CV` -> `cs`: a query naming the archive matches all of its categories."""
    return category.split(".", 1)[0]
