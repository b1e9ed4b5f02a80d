DROP TABLE clearing_intent_fills;
DROP TABLE clearing_intents;
