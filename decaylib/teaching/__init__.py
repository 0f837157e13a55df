"""The tutorial around the code (notebook 00 and every exercise): ``article`` (the article's map and
glossary), ``exercises`` (checked answers), ``student`` (the edition without solutions), ``book``
(the offline HTML book)."""
