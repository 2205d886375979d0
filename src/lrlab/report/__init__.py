"""Reports: plots and tables made from schedules, range tests and studies."""
