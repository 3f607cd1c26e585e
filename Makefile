# Thin wrapper over CMake for the two everyday commands:
#   make run    build, then start the daemon on 127.0.0.1:8080 with the examples deployed
#   make test   build and run the whole suite, again under ASan+UBSan, then the
#               fuzzers for 20 s each, then make lint (cppcheck + clang-tidy, ~2-4 min)
JOBS ?= $(shell nproc)
DATA ?= fnd-data
LISTEN ?= 127.0.0.1:8080

.PHONY: all deps build run test test-release test-sanitize test-fuzz fuzz lint bench clean

all: build

deps:
	@scripts/deps

build: deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build -j $(JOBS)

run: build
	./build/fnd serve --listen $(LISTEN) --data $(DATA) --seed build/examples

test: test-release test-sanitize test-fuzz lint

test-release: deps
	cmake -S . -B build-ci -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFND_WERROR=ON >/dev/null
	cmake --build build-ci -j $(JOBS)
	cd build-ci && ctest --output-on-failure -j $(JOBS)

test-sanitize: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DFND_WERROR=ON -DFND_SANITIZE=ON >/dev/null
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS)

# libFuzzer drivers (tests/fuzz) built with clang, ASan and UBSan, each fuzzed for
# FUZZ_SECONDS from its seed corpus; a crash leaves its input in build-fuzz/fuzz-artifacts.
FUZZ_SECONDS ?= 60
fuzz: deps
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DFND_FUZZ=ON \
	    -DFND_FUZZ_SECONDS=$(FUZZ_SECONDS) >/dev/null
	cmake --build build-fuzz -j $(JOBS) --target fuzzers
	cd build-fuzz && ctest --output-on-failure -j $(JOBS) -R '^fuzz\.run\.'

# The short fuzz run of `make test`.
test-fuzz:
	$(MAKE) fuzz FUZZ_SECONDS=20

# cppcheck and clang-tidy over src/ (scripts/lint), findings are errors; each file is
# analysed once by each tool, JOBS at a time. The last step of make test.
lint: deps
	JOBS=$(JOBS) scripts/lint

bench: build
	/usr/bin/python3 tests/bench/suite.py --fnd build/fnd

clean:
	rm -rf build build-ci build-asan build-fuzz build-lint
