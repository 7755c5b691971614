DROP TABLE kill_switch;
