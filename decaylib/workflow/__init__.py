"""Running the tutorial (every notebook): ``params`` (the notebooks' parameter rules), ``pipeline``
(build or load each stage, on the simulator or your own events), ``runner`` (papermill, HTML, reports)."""
