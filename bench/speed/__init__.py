"""The speed harness: the matrix of cells (cells), one process per cell run and read back
(harness), the cell worker that measures (measure), repeats combined (records),
statistics (stats), the machine-speed probes and machine-load counters that run between
blocks of steps (speedprobe, machineload), the tables (show) and the scaling curves
(scaling)."""
