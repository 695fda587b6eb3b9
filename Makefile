# Shortcuts for the two README commands (the scripts work without make too).
.PHONY: run demo test
run:
	./scripts/run.sh
demo:
	./scripts/run.sh --demo
test:
	./scripts/test.sh
