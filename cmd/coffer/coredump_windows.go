package main

// disableCoreDumps has nothing to turn off on Windows: a process writes no
// core file there; crash dumps are Windows Error Reporting's, configured by
// the administrator for the machine, not by the process.
func disableCoreDumps() error { return nil }
