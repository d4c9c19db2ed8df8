"""The synthetic PCFG study: ``study`` trains one model per ``D_M`` (several seeds) and runs the evaluations of
``metacond.eval_tasks.pcfg``; ``report`` turns their paired differences into verdicts."""
