# hilander: thin wrapper over CMake. `make run` and `make test` set everything up.
BUILD    ?= build
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 30
# make run: seconds the listener stays open after Ctrl-C/SIGTERM (hilanderd's default is 30)
DRAIN ?= 2
FUZZ_TARGETS ?= npy rawf32 modelfile json_request query statefile statechain
CMAKE_FLAGS ?=
PORT     ?= 8080

.PHONY: all deps deps-test deps-bench build test run clean format format-check test-asan test-tsan fuzz bench-server \
        image image-test

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

# The service on 127.0.0.1:$(PORT) with the embedded store. The default model is
# models/universal.hlm when it exists, else the built-in model-free mode "none".
run: build
	@if [ -f models/universal.hlm ]; then dm=universal; else dm=none; fi; \
	echo "hilanderd: http://127.0.0.1:$(PORT) (default model $$dm)" >&2; \
	exec ./$(BUILD)/server/hilanderd --listen 127.0.0.1 --port $(PORT) --model-dir models \
	  --default-model $$dm --drain-seconds $(DRAIN)

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

# libFuzzer (clang): each target runs FUZZ_SECONDS on a scratch copy of its seed corpus, so
# new inputs do not land in the repository; JOBS targets at a time (scripts/fuzz-run.sh).
# Crashes are written to build-fuzz/ (<target>-crash-*); keep a reproducer under tests/fuzz/crashers/<target>/ and rerun tests/make_test_data.py.
# HL_WERROR is off here: clang 14 flags core/src/status.c (-Wformat-nonliteral), which gcc does not.
fuzz:
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHL_FUZZ=ON -DHL_WERROR=OFF -DHL_BUILD_BENCH=OFF
	cmake --build build-fuzz -j $(JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS))
	scripts/fuzz-run.sh $(FUZZ_SECONDS) $(JOBS) $(FUZZ_TARGETS)

# The container image (Dockerfile). Docker here has no registry: the base image is made from
# Debian packages by ../shared/tools/docker-base-image.sh (run when Docker or the base image is
# missing; needs root). The default model is universal when models/universal.hlm ships.
IMAGE ?= hilander:dev
BASE_IMAGE_SCRIPT ?= ../shared/tools/docker-base-image.sh
image:
	@if ! docker info >/dev/null 2>&1 || ! docker image inspect debian:bookworm-slim >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then $(BASE_IMAGE_SCRIPT); else sudo $(BASE_IMAGE_SCRIPT); fi; \
	fi
	docker build --network host \
	  --build-arg DEFAULT_MODEL=$$(if [ -f models/universal.hlm ]; then echo universal; else echo none; fi) \
	  -t $(IMAGE) .
	@docker image inspect --format '$(IMAGE): {{.Size}} bytes' $(IMAGE)

# Runs the image on a free loopback port (host network) and replays the README's curl lines.
# Not part of `make test` (CI may have no Docker).
image-test:
	scripts/image-test.sh $(IMAGE)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	scripts/format-check.sh

clean:
	rm -rf $(BUILD) build-asan build-tsan build-fuzz
