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

# --- Bioinformatics tools and helpers (Debian packages) ------------------------------------------
DEBIAN_PACKAGES: Final[tuple[str, ...]] = (
    "bwa",
    "minimap2",
    "samtools",
    "bcftools",
    "tabix",
    "dwgsim",
    "seqan-apps",
    "smalt-examples",
    "kcat",
)

# Minimum versions the pipeline relies on (older samtools/bcftools lack options the services use).
MIN_TOOL_VERSIONS: Final[dict[str, str]] = {
    "samtools": "1.16",
    "bcftools": "1.16",
    "bwa": "0.7.17",
    "minimap2": "2.24",
}
