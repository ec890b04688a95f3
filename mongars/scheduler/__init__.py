"""Sommeil Paradoxal: the one scheduler of background work (docs/jobs.md).

Named jobs (:mod:`.jobs`) run as DBOS workflows of steps (:mod:`.engine`); the heavy
ones only while the machine is idle (:mod:`.idle`), and each run records its CPU time
and energy (:mod:`.energy`)."""
