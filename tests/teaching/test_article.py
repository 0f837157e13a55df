"""The article map and the glossary (decaylib.teaching.article) and notebook 00."""
from __future__ import annotations

import re
from pathlib import Path

from decaylib.teaching import article

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"


def test_the_map_covers_the_article_and_its_faq():
    m = article.article_map()
    assert set(m["verdict"]) <= set(article.VERDICTS)
    says = " ".join(m["article says"]).lower()
    for item in ("distributed training", "streaming", "ensembles", "data augmentation", "σ_k w_k", "softmax",
                 "hidden 128", "log(x + 1e-8)", "predicted ahead of time", "cross-validation"):
        assert item.lower() in says, item
    for part in ("§1", "§2", "§3", "§4", "§5", "§6", "§7", "FAQ"):
        assert (m["part"].str.startswith(part)).any(), part
    ar = m[m["article says"].str.contains("LSTM formula")].iloc[0]
    assert ar["verdict"] == "corrected" and "linear autoregression" in ar["tutorial shows"]
    assert len(article.ARTICLE_STEPS) == 7


def test_every_linked_notebook_exists():
    for name in article.notebooks_linked():
        assert (NOTEBOOKS / name).exists(), name


def test_glossary_terms_and_the_names_they_cite():
    g = article.glossary()
    assert len(g) >= 30 and g["中文"].is_unique
    for zh in ("兴趣度", "衰减", "衰减率", "衰减点", "半衰期", "浏览次数", "点击次数", "推荐次数", "购买", "推荐系统",
               "长短期记忆网络"):
        assert zh in set(g["中文"]), zh
    code = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "decaylib").rglob("*.py"))
    for cited in g["in the notebooks"]:
        for name in re.findall(r"`([A-Za-z_][A-Za-z0-9_.]*)`", cited):
            if name.startswith("decaylib."):
                path = ROOT.joinpath(*name.split("."))
                assert path.with_suffix(".py").exists() or (path / "__init__.py").exists(), name
                continue
            last = name.split(".")[-1]
            assert re.search(rf"\b(def|class)\s+{last}\b|\b{last}\s*[:=]|\"{last}\"", code), name
    assert set(g["first in"]) <= {"00", "01", "02", "03", "03b", "04", "04b", "05", "06", "07", "08", "09"}


# Notebook 00 executed: tests/notebooks/test_start_here.py
