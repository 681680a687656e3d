# hilander: thin wrapper over CMake. `make run` and `make test` set everything up.
BUILD    ?= build
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
PORT     ?= 8080

.PHONY: all deps deps-test deps-bench build test run clean format format-check test-asan test-tsan

all: build

deps:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test

deps-bench:
	@scripts/deps.sh bench

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DHL_WERROR=ON $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: deps-test $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	scripts/format-check.sh

# Sanitizer builds run the same suites (CK_FORK=no keeps reports in one process).
test-asan: deps-test
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DHL_SANITIZE=address,undefined -DHL_BUILD_BENCH=OFF
	cmake --build build-asan -j $(JOBS)
	CK_FORK=no ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir build-asan --output-on-failure -j $(JOBS)

test-tsan: deps-test
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DHL_SANITIZE=thread -DHL_BUILD_BENCH=OFF
	cmake --build build-tsan -j $(JOBS)
	CK_FORK=no ctest --test-dir build-tsan --output-on-failure -j $(JOBS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	scripts/format-check.sh

clean:
	rm -rf $(BUILD) build-asan build-tsan
