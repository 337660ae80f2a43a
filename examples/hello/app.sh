#!/bin/sh
cat /greeting.txt
