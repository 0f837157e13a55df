# The tutorial's commands. Each target creates the virtual environment if it is missing.
#   make run     execute every notebook into build/ (HTML + index.html) and print the headline metrics
#   make book    the committed notebooks + solutions as an offline HTML book in build/ (no execution, seconds)
#   make student the student edition in build/student/notebooks/ (solutions stripped, starters and checks kept)
#   make test    unit tests + notebook execution tests (papermill) + nbval on the committed notebooks
#   make unit    the quick inner loop: pytest -m "not slow" (no notebook, subprocess or Spark tests)
#   make lab     JupyterLab opened on notebooks/ (serves the whole repository; LAB_ARGS="--port=8890 ...")
#   make report USER_ID=17        per-user report(s) into build/reports/ (USER_ID='17 42' for several)
#   make report USER_ID=C12347 EVENTS=shop.csv [MAPPING=shop.json]   the same on your own events and ids
#                                 (into build/reports/<events file name>/)
#   make spark-cluster  a Spark standalone master + 2 workers on 127.0.0.1 until Ctrl-C (prints the master URL;
#                       SPARK_ARGS="--workers 3 --memory 2g")
PYTHON ?= python3
VENV ?= .venv
# CPU build by default (the CUDA wheel is several GB). GPU users: make TORCH=torch setup
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Test files run side by side, one file per worker (a file keeps its order and its module fixtures).
TEST_JOBS ?= auto

.PHONY: setup run book student test unit lab report bench spark-cluster clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[spark]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (decay tutorial)"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m decaylib.workflow.runner run --build build $(RUN_ARGS)

book: $(STAMP)
	$(BIN)/python -m decaylib.teaching.book --notebooks notebooks --out build

# The student edition: solutions replaced by starters (name = None), outputs and NBVAL markers removed.
student: $(STAMP)
	$(BIN)/python -m decaylib.teaching.student --notebooks notebooks --out build/student

# Debian's chromium for the browser test of the book (tests/teaching/test_book.py); never fails the target.
test: $(STAMP)
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 \
	    || echo "chromium not installable: the browser test will skip"
	MPLBACKEND=Agg $(BIN)/python -m pytest -q -n $(TEST_JOBS) --dist loadfile $(PYTEST_ARGS)

unit: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

# Served from the repository root (the file browser reaches decaylib/ and data/ too), opened on
# notebooks/. --allow-root only when run as root (a container); extra options: LAB_ARGS="--port=8890".
LAB_ARGS ?=
lab: $(STAMP)
	exec $(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/notebooks \
	    $$(test "$$(id -u)" = 0 && echo --allow-root) $(LAB_ARGS)

# USER_ID, EVENTS and MAPPING reach the runner through the environment (--from-env), never through
# the shell command line, so an id or a path with quotes, spaces, ; or backticks is passed as it is.
# $(value ...), the new names and unexport keep make itself from expanding $(...) inside them (make
# expands a command-line variable when it exports it to a recipe's environment).
unexport USER_ID EVENTS MAPPING
report: export DECAY_REPORT_IDS := $(value USER_ID)
report: export DECAY_REPORT_EVENTS := $(value EVENTS)
report: export DECAY_REPORT_MAPPING := $(value MAPPING)
report: $(STAMP)
	@test -n "$$DECAY_REPORT_IDS" || (echo "usage: make report USER_ID=17  (or USER_ID='17 42'; own events: USER_ID=C12347 EVENTS=shop.csv [MAPPING=shop.json])"; exit 2)
	$(BIN)/python -m decaylib.workflow.runner report --build build --from-env

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

# Separate JVM processes from the installed pyspark (Java 17+), stopped by pid on Ctrl-C (decaylib/data/spark_cluster.py).
SPARK_ARGS ?=
spark-cluster: $(STAMP)
	$(BIN)/python -m decaylib.data.spark_cluster $(SPARK_ARGS)

clean:
	rm -rf build data/generated
