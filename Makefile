# eddy: a Lua-scripted event-processing runtime.
#   make            build bin/eddy
#   make test       install deps, build, run the whole suite
#   make asan-test  the suite under AddressSanitizer + UBSan
#   make demo       run the demo pipeline on generated events
#   make bench      throughput figures (full pipeline vs decode-only)

PKGS    := luajit jansson libevent rdkafka libmariadb libcurl
CC      ?= gcc
OPT     ?= -O2 -flto=auto
# runtime/ is split into subsystem folders and plugins/<kind>_<name>/ (see each
# folder's README.md); every folder is on the include path, so a header is named
# by its file name alone.
SRC_DIRS := $(sort $(dir $(wildcard runtime/*.c runtime/*/*.[ch] runtime/plugins/*/*.[ch] bindings/*.c)))
CFLAGS  += $(OPT) -g -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
           -pthread $(patsubst %/,-I%,$(SRC_DIRS)) $(shell pkg-config --cflags $(PKGS))
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -lm -pthread
BUILD   ?= build
BIN     ?= bin
PREFIX  ?= /usr/local

VERSION := $(shell cat VERSION)
CFLAGS  += -DEDDY_VERSION='"$(VERSION)"'

LIB_SRC := $(wildcard runtime/*.c runtime/*/*.c runtime/plugins/*/*.c bindings/*.c)
LIB_SRC := $(filter-out runtime/main.c,$(LIB_SRC))
LIB_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRC))
UNIT_SRC := $(wildcard tests/unit/*_test.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BIN)/%,$(UNIT_SRC))
DEPS    := $(LIB_OBJ:.o=.d) $(BUILD)/runtime/main.d $(BUILD)/tests/bench.d $(BUILD)/tests/bench_kafka.d \
           $(patsubst %.c,$(BUILD)/%.d,$(UNIT_SRC)) $(BUILD)/tests/kafka_mock.d

all: $(BIN)/eddy

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libeddy.a: $(LIB_OBJ)
	$(AR) rcs $@ $^

$(BIN)/eddy: $(BUILD)/runtime/main.o $(BUILD)/libeddy.a
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/eddy-bench: $(BUILD)/tests/bench.o $(BUILD)/tests/bench_kafka.o $(BUILD)/libeddy.a
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) -pthread

# C unit tests, one binary per tests/unit/*_test.c, run by tests/t_unit.sh.
$(BIN)/%_test: $(BUILD)/tests/unit/%_test.o $(BUILD)/libeddy.a
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/kafka-mock: $(BUILD)/tests/kafka_mock.o
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# An LD_PRELOAD shim under which no thread can start (tests/no_threads.c). Never
# sanitized: it is loaded before the sanitizer's runtime.
$(BIN)/no-threads.so: tests/no_threads.c
	@mkdir -p $(BIN)
	$(CC) -O2 -Wall -Wextra -Werror -shared -fPIC -o $@ $<

# One under which no large address range can be reserved (tests/no_big_mmap.c), the
# same way.
$(BIN)/no-big-mmap.so: tests/no_big_mmap.c
	@mkdir -p $(BIN)
	$(CC) -O2 -Wall -Wextra -Werror -shared -fPIC -o $@ $< -ldl

# Everything the suite runs besides bin/eddy: unit tests, the Kafka mock tool and the
# shims.
units: $(UNIT_BIN) $(BIN)/kafka-mock $(BIN)/no-threads.so $(BIN)/no-big-mmap.so

deps:
	bash scripts/deps.sh

# Targets that install deps build through a sub-make: this make's pkg-config flags
# were computed before the packages were there.
test: deps
	$(MAKE) all units
	bash tests/run.sh

# A separate build tree so sanitized objects never mix with the normal ones.
asan-test: deps
	$(MAKE) all units BUILD=build/asan BIN=bin/asan \
	  OPT="-O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all"
	EDDY=bin/asan/eddy UNITS=bin/asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1 bash tests/run.sh

demo: deps
	$(MAKE) all
	bash scripts/demo.sh

bench: deps
	$(MAKE) all $(BIN)/eddy-bench $(BIN)/kafka-mock
	bash scripts/bench.sh

# The binary, the shipped processors, rules and SQL, the service config and a systemd
# unit. An existing $(SYSCONFDIR)/eddy/eddy.conf, processors or rules are kept.
SYSCONFDIR ?= $(PREFIX)/etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
install: all
	install -D -m 0755 $(BIN)/eddy $(DESTDIR)$(PREFIX)/bin/eddy
	install -d $(DESTDIR)$(PREFIX)/share/eddy/sql $(DESTDIR)$(PREFIX)/share/doc/eddy
	install -m 0644 conf/sql/*.sql $(DESTDIR)$(PREFIX)/share/eddy/sql/
	install -d $(DESTDIR)$(PREFIX)/share/eddy/sql/clickhouse
	install -m 0644 conf/sql/clickhouse/*.sql $(DESTDIR)$(PREFIX)/share/eddy/sql/clickhouse/
	install -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/eddy/
	install -d $(DESTDIR)$(SYSCONFDIR)/eddy/processors $(DESTDIR)$(SYSCONFDIR)/eddy/rules
	[ -e $(DESTDIR)$(SYSCONFDIR)/eddy/eddy.conf ] || \
	  install -m 0644 conf/service.conf $(DESTDIR)$(SYSCONFDIR)/eddy/eddy.conf
	for f in processors/*.lua conf/rules/*.json; do \
	  t=$(DESTDIR)$(SYSCONFDIR)/eddy/$${f#conf/}; [ -e $$t ] || install -m 0644 $$f $$t || exit 1; \
	done
	install -d $(DESTDIR)$(UNITDIR)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' conf/eddy.service \
	  > $(DESTDIR)$(UNITDIR)/eddy.service

clean:
	rm -rf $(BUILD) $(BIN)

.PHONY: all units deps test asan-test demo bench install clean
-include $(DEPS)
