// The catalog served from memory: the embedded default (no MySQL configured) and fast unit tests.
import type { Dataset } from './dataset.ts';
import type { CatalogStore, Content, DeviceClass, PlayData, Right } from './types.ts';

export class MemoryCatalogStore implements CatalogStore {
  readonly #contents: Map<string, Content>;
  readonly #devices: Map<string, DeviceClass>;
  readonly #dataset: Dataset;

  constructor(dataset: Dataset) {
    this.#dataset = dataset;
    this.#contents = new Map(dataset.contents.map((content) => [content.id, content]));
    this.#devices = new Map(dataset.deviceClasses.map((device) => [device.name, device]));
  }

  playData(userId: string, contentId: string): Promise<PlayData> {
    return Promise.resolve({ content: this.#contents.get(contentId), rights: this.#rights(userId, contentId) });
  }

  deviceClass(name: string): Promise<DeviceClass | undefined> {
    return Promise.resolve(this.#devices.get(name));
  }

  #rights(userId: string, contentId: string): Right[] {
    const { purchases, plans, subscriptions } = this.#dataset;
    const bought: Right[] = purchases
      .filter((purchase) => purchase.userId === userId && purchase.contentId === contentId)
      .map(({ kind, maxHeight, expiresAt }) => ({ kind, maxHeight, expiresAt, devices: null }));
    const subscribed: Right[] = subscriptions.flatMap((subscription) => {
      const plan = plans.find((candidate) => candidate.id === subscription.planId);
      if (subscription.userId !== userId || plan === undefined || !plan.contentIds.includes(contentId)) return [];
      return [{ kind: 'subscription' as const, maxHeight: plan.maxHeight, expiresAt: subscription.expiresAt, devices: plan.devices }];
    });
    return [...bought, ...subscribed];
  }
}
