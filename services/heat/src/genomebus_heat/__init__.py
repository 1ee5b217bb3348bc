"""genomebus heat: research capacity follows district-heating demand, within a wait bound.

The compute centre's servers are cooled with 40 °C water that then warms the district-heating
network. Research alignments are the flexible load: they can run when heat is wanted and wait
when it is not, but never longer than ``GENOMEBUS_HEAT_MAX_RESEARCH_WAIT_S``. Every
``GENOMEBUS_HEAT_INTERVAL_S`` the controller

1. reads the forecast (ConfigMap ``genomebus-heat-demand``, see ``core/demand.py``), the
   research lane's backlog in Kafka (``adapters/backlog.py``) and the KEDA ScaledObject
   ``alignment-research``, ``decide``s a ceiling (``core/decision.py``) and merge-patches
   ``spec.maxReplicaCount`` with the reason and the start of the hysteresis window as
   annotations (``core/steering.py``);
2. copies the nodes' ``genomebus.dk/heat-recovery-fraction`` labels into ConfigMap
   ``genomebus-heat-recovery``, key ``recovery.json`` (``core/recovery.py``), which the stages
   read as ``GENOMEBUS_HEAT_RECOVERY_FILE``.

KEDA still scales on lag underneath: the controller only moves the ceiling. It needs, in its
namespace, get/patch on scaledobjects.keda.sh and get/create/patch on configmaps, and
cluster-wide list on nodes. Run one replica: a second one is harmless (both read the window
from the ScaledObject) but pointless.
"""
