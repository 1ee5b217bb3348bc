"""Strict JSON Schemas for the operator resources whose CRDs no usable package registry serves.

Each describes the fields of the real CRD that deploy/k8s uses, with the real CRD's names,
types and enums (Strimzi 0.4x/0.5x kafka.strimzi.io/v1beta2, MinIO operator minio.min.io/v2,
CloudNativePG postgresql.cnpg.io/v1), and rejects every field it does not list: a typo, or a
field that belongs one level up, fails here instead of being pruned by the API server. A field
the real CRD has but these schemas lack fails too, so a new field used in the manifests means
adding it here after checking the operator's documentation.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator


def obj(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


def arr(items: dict[str, Any], min_items: int = 0) -> dict[str, Any]:
    return {"type": "array", "items": items, "minItems": min_items}


STR = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
ANY_MAP = {"type": "object"}  # free-form maps the CRD leaves open (config, labels)
NAME_REF = obj({"name": STR}, ("name",))
QUANTITY = {"anyOf": [{"type": "string", "pattern": r"^[0-9.]+([mkMGTP]i?)?$"}, INT]}
RESOURCES = obj(
    {
        "requests": {"type": "object", "additionalProperties": QUANTITY},
        "limits": {"type": "object", "additionalProperties": QUANTITY},
    }
)
NONEMPTY = {"type": "string", "minLength": 1}


def resource(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return obj(
        {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": obj(
                {
                    "name": {
                        "type": "string",
                        "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
                        "maxLength": 253,
                    },
                    "namespace": STR,
                    "labels": {"type": "object", "additionalProperties": STR},
                    "annotations": {"type": "object", "additionalProperties": STR},
                },
                ("name",),
            ),
            "spec": spec,
        },
        ("apiVersion", "kind", "metadata", "spec"),
    )


# --- Strimzi ---------------------------------------------------------------------------------
LABEL_SELECTOR = obj(
    {
        "matchLabels": {"type": "object", "additionalProperties": STR},
        "matchExpressions": {"type": "array"},
    }
)
STRIMZI_LISTENER = obj(
    {
        "name": {"type": "string", "pattern": "^[a-z0-9]{1,11}$"},
        "port": {"type": "integer", "minimum": 9092},
        "type": {
            "enum": ["internal", "route", "loadbalancer", "nodeport", "ingress", "cluster-ip"]
        },
        "tls": BOOL,
        "authentication": obj(
            {"type": {"enum": ["tls", "scram-sha-512", "oauth", "custom"]}}, ("type",)
        ),
        "configuration": {"type": "object"},
        "networkPolicyPeers": arr(
            obj(
                {
                    "podSelector": LABEL_SELECTOR,
                    "namespaceSelector": LABEL_SELECTOR,
                    "ipBlock": {"type": "object"},
                }
            )
        ),
    },
    ("name", "port", "type", "tls"),
)
KAFKA = resource(
    "kafka.strimzi.io/v1beta2",
    "Kafka",
    obj(
        {
            "kafka": obj(
                {
                    "version": STR,
                    "metadataVersion": STR,
                    "listeners": arr(STRIMZI_LISTENER, 1),
                    "config": ANY_MAP,
                    "authorization": obj(
                        {
                            "type": {"enum": ["simple", "opa", "keycloak", "custom"]},
                            "superUsers": arr(STR),
                        },
                        ("type",),
                    ),
                    "rack": {"type": "object"},
                    "metricsConfig": {"type": "object"},
                    "template": {"type": "object"},
                },
                ("listeners",),
            ),
            "entityOperator": obj(
                {
                    "topicOperator": {"type": "object"},
                    "userOperator": {"type": "object"},
                    "template": {"type": "object"},
                }
            ),
            "cruiseControl": {"type": "object"},
            "kafkaExporter": {"type": "object"},
        },
        ("kafka",),
    ),
)

STRIMZI_VOLUME = obj(
    {
        "id": {"type": "integer", "minimum": 0},
        "type": {"enum": ["ephemeral", "persistent-claim"]},
        "size": STR,
        "class": STR,
        "deleteClaim": BOOL,
        "kraftMetadata": {"enum": ["shared"]},
    },
    ("type",),
)
KAFKA_NODE_POOL = resource(
    "kafka.strimzi.io/v1beta2",
    "KafkaNodePool",
    obj(
        {
            "replicas": {"type": "integer", "minimum": 0},
            "roles": arr({"enum": ["controller", "broker"]}, 1),
            "storage": obj(
                {
                    "type": {"enum": ["ephemeral", "persistent-claim", "jbod"]},
                    "volumes": arr(STRIMZI_VOLUME, 1),
                    "size": STR,
                    "class": STR,
                    "deleteClaim": BOOL,
                },
                ("type",),
            ),
            "resources": RESOURCES,
            "jvmOptions": {"type": "object"},
            "template": {"type": "object"},
        },
        ("replicas", "roles", "storage"),
    ),
)

KAFKA_TOPIC = resource(
    "kafka.strimzi.io/v1beta2",
    "KafkaTopic",
    obj(
        {
            "topicName": NONEMPTY,
            "partitions": {"type": "integer", "minimum": 1},
            "replicas": {"type": "integer", "minimum": 1, "maximum": 32767},
            "config": {
                "type": "object",
                "additionalProperties": {"type": ["string", "integer", "boolean", "number"]},
            },
        }
    ),
)

# Strimzi's ``simple`` authorization: its AclRule (resource, type, host, operations).
STRIMZI_ACL_RULE = obj(
    {
        "resource": obj(
            {
                "type": {"enum": ["topic", "group", "cluster", "transactionalId"]},
                "name": STR,
                "patternType": {"enum": ["literal", "prefix"]},
            },
            ("type",),
        ),
        "type": {"enum": ["allow", "deny"]},
        "host": STR,
        "operations": arr(
            {
                "enum": [
                    "Read",
                    "Write",
                    "Create",
                    "Delete",
                    "Alter",
                    "Describe",
                    "ClusterAction",
                    "AlterConfigs",
                    "DescribeConfigs",
                    "IdempotentWrite",
                    "All",
                ]
            },
            1,
        ),
    },
    ("resource", "operations"),
)
KAFKA_USER = resource(
    "kafka.strimzi.io/v1beta2",
    "KafkaUser",
    obj(
        {
            "authentication": obj(
                {
                    "type": {"enum": ["tls", "tls-external", "scram-sha-512"]},
                    "password": {"type": "object"},
                },
                ("type",),
            ),
            "authorization": obj(
                {"type": {"enum": ["simple"]}, "acls": arr(STRIMZI_ACL_RULE)}, ("type", "acls")
            ),
            "quotas": {"type": "object"},
            "template": {"type": "object"},
        }
    ),
)

# --- MinIO operator ----------------------------------------------------------------------------
POD_SECURITY = obj(
    {
        "runAsNonRoot": BOOL,
        "runAsUser": INT,
        "runAsGroup": INT,
        "fsGroup": INT,
        "fsGroupChangePolicy": {"enum": ["OnRootMismatch", "Always"]},
        "seccompProfile": {"type": "object"},
    }
)
CONTAINER_SECURITY = obj(
    {
        "runAsNonRoot": BOOL,
        "runAsUser": INT,
        "runAsGroup": INT,
        "allowPrivilegeEscalation": BOOL,
        "readOnlyRootFilesystem": BOOL,
        "capabilities": obj({"drop": arr(STR), "add": arr(STR)}),
        "seccompProfile": obj(
            {"type": {"enum": ["RuntimeDefault", "Localhost", "Unconfined"]}}, ("type",)
        ),
    }
)
PVC_TEMPLATE = obj(
    {
        "metadata": obj({"name": STR, "labels": ANY_MAP, "annotations": ANY_MAP}),
        "spec": obj(
            {
                "accessModes": arr(
                    {
                        "enum": [
                            "ReadWriteOnce",
                            "ReadWriteOncePod",
                            "ReadOnlyMany",
                            "ReadWriteMany",
                        ]
                    },
                    1,
                ),
                "storageClassName": STR,
                "resources": obj(
                    {"requests": obj({"storage": QUANTITY}, ("storage",))}, ("requests",)
                ),
            },
            ("accessModes", "resources"),
        ),
    }
)
TENANT = resource(
    "minio.min.io/v2",
    "Tenant",
    obj(
        {
            "image": STR,
            "configuration": NAME_REF,
            "users": arr(NAME_REF),
            "buckets": arr(obj({"name": NONEMPTY, "region": STR, "objectLock": BOOL}, ("name",))),
            "requestAutoCert": BOOL,
            "env": arr(
                obj({"name": NONEMPTY, "value": STR, "valueFrom": {"type": "object"}}, ("name",))
            ),
            "podManagementPolicy": {"enum": ["OrderedReady", "Parallel"]},
            "priorityClassName": STR,
            "pools": arr(
                obj(
                    {
                        "name": NONEMPTY,
                        "servers": {"type": "integer", "minimum": 1},
                        "volumesPerServer": {"type": "integer", "minimum": 1},
                        "volumeClaimTemplate": PVC_TEMPLATE,
                        "resources": RESOURCES,
                        "securityContext": POD_SECURITY,
                        "containerSecurityContext": CONTAINER_SECURITY,
                        "affinity": {"type": "object"},
                        "nodeSelector": ANY_MAP,
                        "tolerations": {"type": "array"},
                    },
                    ("servers", "volumesPerServer", "volumeClaimTemplate"),
                ),
                1,
            ),
        },
        ("pools",),
    ),
)

# --- CloudNativePG --------------------------------------------------------------------------------
CNPG_ROLE = obj(
    {
        "name": NONEMPTY,
        "ensure": {"enum": ["present", "absent"]},
        "login": BOOL,
        "superuser": BOOL,
        "createdb": BOOL,
        "createrole": BOOL,
        "inherit": BOOL,
        "replication": BOOL,
        "connectionLimit": INT,
        "comment": STR,
        "inRoles": arr(STR),
        "passwordSecret": NAME_REF,
        "validUntil": STR,
        "disablePassword": BOOL,
    },
    ("name",),
)
CNPG_CLUSTER = resource(
    "postgresql.cnpg.io/v1",
    "Cluster",
    obj(
        {
            "instances": {"type": "integer", "minimum": 1},
            "imageName": STR,
            "primaryUpdateStrategy": {"enum": ["unsupervised", "supervised"]},
            "storage": obj({"size": QUANTITY, "storageClass": STR}),
            "resources": RESOURCES,
            "bootstrap": obj(
                {
                    "initdb": obj(
                        {
                            "database": NONEMPTY,
                            "owner": NONEMPTY,
                            "secret": NAME_REF,
                            "encoding": STR,
                            "localeCollate": STR,
                            "localeCType": STR,
                        }
                    )
                }
            ),
            "managed": obj({"roles": arr(CNPG_ROLE)}),
            "backup": obj(
                {
                    "retentionPolicy": {"type": "string", "pattern": r"^[1-9][0-9]*[dwm]$"},
                    "barmanObjectStore": obj(
                        {
                            "destinationPath": {"type": "string", "pattern": r"^s3://"},
                            "endpointURL": STR,
                            "s3Credentials": obj(
                                {
                                    "accessKeyId": obj(
                                        {"name": NONEMPTY, "key": NONEMPTY}, ("name", "key")
                                    ),
                                    "secretAccessKey": obj(
                                        {"name": NONEMPTY, "key": NONEMPTY}, ("name", "key")
                                    ),
                                },
                                ("accessKeyId", "secretAccessKey"),
                            ),
                            "wal": obj({"compression": {"enum": ["gzip", "bzip2", "snappy"]}}),
                            "data": obj({"compression": {"enum": ["gzip", "bzip2", "snappy"]}}),
                        },
                        ("destinationPath",),
                    ),
                }
            ),
            "postgresql": obj(
                {"parameters": {"type": "object", "additionalProperties": STR}, "pg_hba": arr(STR)}
            ),
            "monitoring": {"type": "object"},
            "affinity": {"type": "object"},
        },
        ("instances",),
    ),
)
CNPG_DATABASE = resource(
    "postgresql.cnpg.io/v1",
    "Database",
    obj(
        {
            "cluster": NAME_REF,
            "name": NONEMPTY,
            "owner": NONEMPTY,
            "ensure": {"enum": ["present", "absent"]},
            "databaseReclaimPolicy": {"enum": ["retain", "delete"]},
        },
        ("cluster", "name", "owner"),
    ),
)

CNPG_SCHEDULED_BACKUP = resource(
    "postgresql.cnpg.io/v1",
    "ScheduledBackup",
    obj(
        {
            # Six fields: CNPG's cron has seconds first.
            "schedule": {"type": "string", "pattern": r"^\S+( \S+){5}$"},
            "backupOwnerReference": {"enum": ["none", "self", "cluster"]},
            "cluster": NAME_REF,
            "immediate": BOOL,
            "suspend": BOOL,
            "method": {"enum": ["barmanObjectStore", "volumeSnapshot", "plugin"]},
        },
        ("schedule", "cluster"),
    ),
)

SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("kafka.strimzi.io/v1beta2", "Kafka"): KAFKA,
    ("kafka.strimzi.io/v1beta2", "KafkaNodePool"): KAFKA_NODE_POOL,
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"): KAFKA_TOPIC,
    ("kafka.strimzi.io/v1beta2", "KafkaUser"): KAFKA_USER,
    ("minio.min.io/v2", "Tenant"): TENANT,
    ("postgresql.cnpg.io/v1", "Cluster"): CNPG_CLUSTER,
    ("postgresql.cnpg.io/v1", "Database"): CNPG_DATABASE,
    ("postgresql.cnpg.io/v1", "ScheduledBackup"): CNPG_SCHEDULED_BACKUP,
}


def validators() -> dict[tuple[str, str], Draft202012Validator]:
    out = {}
    for key, schema in SCHEMAS.items():
        Draft202012Validator.check_schema(schema)
        out[key] = Draft202012Validator(schema)
    return out
