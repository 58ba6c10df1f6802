"""The engine: the sweep (cells x trials), its policy, the launchers that start workers, their supervision.

Modules: sweep (Runner), policy (counts, warm-up, placement), launch (Launcher seam, LocalProcess), inline
(Inline launcher: workers as threads, for tests), supervise (control protocol, timeouts, deaths), worker (the
worker loop), rundir (the private run directory).
Nothing is imported here: a worker process imports ipclab.engine.worker and only what it needs.
"""
