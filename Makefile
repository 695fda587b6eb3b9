# Shortcuts for the README commands (the scripts work without make too).
.PHONY: run demo test bench
run:
	./scripts/run.sh
demo:
	./scripts/run.sh --demo
test:
	./scripts/test.sh
bench:
	./bench/run.sh $(ARGS)
