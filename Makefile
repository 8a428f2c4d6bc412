# Convenience aliases for ./dev (the README's commands work without make).
.PHONY: demo test bench setup
demo:
	./dev demo
test:
	./dev test
setup:
	./dev setup
