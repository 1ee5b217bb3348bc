"""Every version the dev stack installs, in one place.

Why one module: the stack is built from four different sources (Maven Central, the Go module
proxy, Debian, and the JDK/Go toolchains already on the machine). Pinning all of them here means
one diff shows what changed when the stack changes, and the tools cache is keyed by these values
so bumping a pin can never silently reuse an old build.
"""

from __future__ import annotations

from typing import Final

# --- Apache Kafka (resolved from Maven Central by kafka-pom.xml) ---------------------------------
KAFKA_VERSION: Final = "4.1.1"
# Kafka's POMs omit the slf4j->log4j2 binding its tarball ships; without it the broker logs nothing.
LOG4J_VERSION: Final = "2.24.3"
MAVEN_DEPENDENCY_PLUGIN: Final = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
# Kafka 4.x brokers need Java 17 or newer.
JAVA_MIN_MAJOR: Final = 17

# --- MinIO (built from source with `go install`; upstream stopped publishing binaries) -----------
MINIO_MODULE: Final = "github.com/minio/minio"
MINIO_VERSION: Final = "v0.0.0-20260212201848-7aac2a2c5b7c"

# --- kustomize (built with `go install`; renders deploy/k8s for the manifest tests) --------------
# `kubectl kustomize` embeds an older kustomize and kubectl may be absent; the tests use this one.
KUSTOMIZE_MODULE: Final = "sigs.k8s.io/kustomize/kustomize/v5"
KUSTOMIZE_VERSION: Final = "v5.7.1"

# --- PostgreSQL (Debian package) ----------------------------------------------------------------
POSTGRES_MAJOR: Final = 15
POSTGRES_PACKAGE: Final = f"postgresql-{POSTGRES_MAJOR}"
POSTGRES_BIN_DIR: Final = f"/usr/lib/postgresql/{POSTGRES_MAJOR}/bin"
POSTGRES_DATABASE: Final = "genomebus"

# --- bwa mem -J (genomebus's front end on Debian's libbwa; see bwabuild.py) -----------------------
# Debian bookworm's bwa 0.7.17-7: its package `bwa` runs `bwa index` and every command but `mem`;
# `mem` is bwa/genomebus_bwa.c, bwa 0.7.17's `bwa mem` front end re-done on Debian's libbwa-dev
# (/usr/lib/libbwa.a, the same alignment code as Debian's bwa) with one more option, `-J INT`: the
# index of the input's first read in the whole sample, so chunks aligned apart break ties as one
# run does. Bump BWA_PATCH_LEVEL (and GENOMEBUS_BWA_VERSION in the C file) whenever the front
# end's output changes: the build is cached under <tools>/bwa/<BWA_BUILD>, and rebuilt there when
# the C source or libbwa.a changes (their sha256 are in its build record).
BWA_DEBIAN_VERSION: Final = "0.7.17-7"  # source version of Debian's bwa and libbwa-dev
BWA_UPSTREAM_VERSION: Final = "0.7.17"  # what libbwa-dev must be: the front end re-does 0.7.17's
BWA_PATCH_LEVEL: Final = "genomebus.1"
BWA_BUILD: Final = f"{BWA_DEBIAN_VERSION}+{BWA_PATCH_LEVEL}"
BWA_VERSION_STRING: Final = f"0.7.17-r1188+{BWA_PATCH_LEVEL}"  # what our `bwa` prints
BWA_DRIVER_SOURCE: Final = "bwa/genomebus_bwa.c"  # inside the genomebus_devstack package
# Debian's own hardening flags (dpkg-buildflags, hardening=+all) for a small C program.
BWA_CFLAGS: Final = (
    "-O2 -g -Wall -Wformat -Werror=format-security -fstack-protector-strong -D_FORTIFY_SOURCE=2"
)
BWA_LDFLAGS: Final = "-Wl,-z,relro -Wl,-z,now"
BWA_INCLUDE_DIR: Final = "/usr/include/bwa"  # libbwa-dev's headers
BWA_LIBRARY: Final = "/usr/lib/libbwa.a"  # libbwa-dev's static library
BWA_LIBS: Final = "-lz -lpthread -lm -lrt"  # what libbwa.a needs (zlib: zlib1g-dev)
BWA_STOCK: Final = "/usr/bin/bwa"  # Debian's bwa: the front end runs it for every other command

# --- Bioinformatics tools and helpers (Debian packages) ------------------------------------------
DEBIAN_PACKAGES: Final[tuple[str, ...]] = (
    "bwa",  # `bwa index` and every command but `mem`; services run our front end first in PATH
    "minimap2",
    "samtools",
    "bcftools",
    "tabix",
    "dwgsim",
    "seqan-apps",
    "smalt-examples",
    "kcat",
    # to build `bwa mem -J`: bwa's alignment code as a library, zlib, a C compiler
    "libbwa-dev",
    "zlib1g-dev",
    "gcc",
)

# Minimum versions the pipeline relies on (older samtools/bcftools lack options the services use).
MIN_TOOL_VERSIONS: Final[dict[str, str]] = {
    "samtools": "1.16",
    "bcftools": "1.16",
    "bwa": "0.7.17",
    "minimap2": "2.24",
}
