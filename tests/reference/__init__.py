"""Independent reference implementations (other libraries' engines) that tests and
benchmarks compare Tandem against. Nothing here imports Tandem's strategy code."""
