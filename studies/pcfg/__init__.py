"""The synthetic PCFG study: ``study`` trains one model per ``D_M`` (several seeds) and runs the evaluations of
``metacond.eval_tasks.pcfg``; ``findings`` declares each claim and turns the paired differences into verdicts; ``report``
writes them."""
