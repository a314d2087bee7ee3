# issue 20 (6): the CLI harness never flakes.  `run CMD | head -1` used to
# lose the "exit: N" stderr line when the reader closed the pipe before the
# helper wrote it (SIGPIPE); now its stderr line comes first, every time.
# And tests/cli/run.sh leaves no temporary folders behind.
for i in $(seq 30); do run sh -c 'echo first; exit 3' | head -1; done | sort | uniq -c
mkdir $T/inner
RETAPE_TEST_TMP=$T/inner bash tests/cli/run.sh help
ls -A $T/inner | wc -l
