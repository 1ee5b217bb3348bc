"""The controller's rules, free of Kubernetes and Kafka: the heat forecast (``demand``), the
ceiling rule (``decision``), what a steering round reads and writes on the ScaledObject
(``steering``), the backlog's shape (``backlog``) and the heat-recovery table (``recovery``)."""
