"""The engine: drives one environment's deploys through the state machine of bot.domain.states.

driver.py holds the lease and runs the loop, steps.py has one function per state, each returning
a Transition, and transitions.py applies them: the only writer of a deploy's state."""
