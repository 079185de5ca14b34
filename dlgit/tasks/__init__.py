"""Task folders and runs: start-task, run, finish-task, debug and the task table (SPEC §5)."""
